// The signed-in header (rendered by the server on every signed-in page):
// its sign-out button ends the session and goes to the sign-in page.
import { signOut } from "./lib/session.js";

for (const button of document.querySelectorAll("[data-sign-out]")) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await signOut();
    } catch {
      button.disabled = false;
      button.textContent = "Sign-out failed: try again";
    }
  });
}
