/** What every adapter tells a person when the router does not take their message. */
export const NOTICES = {
  setupHint: 'Codex is not set up in this channel yet. An admin can run `/codex setup` here.',
  pairingHint: 'Codex is not set up here yet. Run `/codex setup` — the first person to do so becomes the relay owner.',
  notAllowed: "Sorry — only the people on this group's allowlist can talk to Codex here. An admin can add you.",
} as const;
