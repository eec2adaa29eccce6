/** The page's two modal dialogs (declared in index.html): confirming an action, and asking for the admin token. */

function dialog(id: string): HTMLDialogElement {
  const node = document.getElementById(id);
  if (!(node instanceof HTMLDialogElement)) throw new Error(`index.html has no <dialog id="${id}">`);
  return node;
}

function part<T extends HTMLElement>(id: string, type: new () => T): T {
  const node = document.getElementById(id);
  if (!(node instanceof type)) throw new Error(`index.html has no #${id}`);
  return node;
}

/** Shows the confirmation; resolves true when the user confirmed. */
export function confirmAction(title: string, detail: string, verb: string): Promise<boolean> {
  const box = dialog('confirm');
  part('confirm-title', HTMLElement).textContent = title;
  part('confirm-detail', HTMLElement).textContent = detail;
  const ok = part('confirm-ok', HTMLButtonElement);
  const cancel = part('confirm-cancel', HTMLButtonElement);
  ok.textContent = verb;
  return new Promise((resolve) => {
    const onOk = (): void => box.close('ok');
    const onCancel = (): void => box.close('cancel');
    ok.addEventListener('click', onOk);
    cancel.addEventListener('click', onCancel);
    box.addEventListener(
      'close',
      () => {
        ok.removeEventListener('click', onOk);
        cancel.removeEventListener('click', onCancel);
        resolve(box.returnValue === 'ok');
      },
      { once: true },
    );
    box.returnValue = '';
    box.showModal();
    cancel.focus(); // the safe choice is the default
  });
}

/** Asks for the admin token; calls `onToken` with what the user entered. */
export function askForToken(reason: string, onToken: (token: string) => void): void {
  const box = dialog('token');
  const form = part('token-form', HTMLFormElement);
  const input = part('token-input', HTMLInputElement);
  part('token-reason', HTMLElement).textContent = reason;
  if (box.open) return;
  form.onsubmit = (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (token === '') return;
    input.value = '';
    box.close();
    onToken(token);
  };
  box.showModal();
  input.focus();
}
