// The keyring's host (lib/keyring.js) as a module of its own, for a page that imports it
// by itself (the inbox, a test); the key setup page bundles the same code.
export { KEY_FILE_PATH, KeyringError, create, decrypt, isUnlocked, lock, publicKeys, sign, unlock } from "./lib/keyring.js";
