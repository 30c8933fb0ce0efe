// The chat settings dialog, made from the fields the chat server sends (Chainlit input
// widgets: a select for the model, sliders for temperature and answer length). Confirm sends
// every value back; Cancel, Esc or a click outside keeps the settings as they were. A control
// outside the dialog (the composer's "Use my files") changes one value through `set`, which sends
// them all as Confirm does.

const KINDS = new Set(['select', 'slider', 'switch', 'textinput', 'numberinput']); // the fields drawn

export class SettingsDialog {
  /**
   * @param {HTMLDialogElement} dialog
   * @param {HTMLElement} fields where the fields go
   * @param {(values: object) => void} confirmed
   */
  constructor(dialog, fields, confirmed) {
    this.dialog = dialog;
    this.fields = fields;
    this.confirmed = confirmed;
    this.inputs = [];
    dialog.addEventListener('close', () => {
      if (dialog.returnValue !== 'confirm') return;
      const values = this.values();
      for (const input of this.inputs) if (input.id in values) input.initial = values[input.id];
      this.confirmed(values);
    });
    dialog.addEventListener('click', (event) => {
      if (event.target === dialog) dialog.close('cancel'); // the backdrop
    });
  }

  /** The current model's name, from the model field's value, if there is one. */
  get model() {
    const field = this.inputs.find((input) => input.id === 'model' && input.type === 'select');
    const item = field?.items?.find((candidate) => candidate.value === field.initial);
    return item ? item.value : null;
  }

  setInputs(inputs) {
    this.inputs = Array.isArray(inputs) ? inputs : [];
  }

  /** The field `id`, if the chat server sent one. */
  input(id) {
    return this.inputs.find((input) => input.id === id && KINDS.has(input.type)) || null;
  }

  /** Change one setting, as if changed in the dialog and confirmed: every value is sent. */
  set(id, value) {
    const input = this.input(id);
    if (!input) return;
    input.initial = value;
    this.confirmed(this.current());
  }

  /** Every field's value as it stands (what the dialog shows when it opens). */
  current() {
    const values = {};
    for (const input of this.inputs) {
      if (!KINDS.has(input.type)) continue;
      if (input.type === 'slider' || input.type === 'numberinput') values[input.id] = Number(input.initial);
      else if (input.type === 'switch') values[input.id] = Boolean(input.initial);
      else if (input.type === 'select') values[input.id] = this.selected(input);
      else values[input.id] = input.initial ?? '';
    }
    return values;
  }

  open() {
    this.fields.replaceChildren(...this.inputs.map((input) => this.field(input)).filter(Boolean));
    this.dialog.returnValue = '';
    this.dialog.showModal();
  }

  /** A select's value: its initial item, or the first (as a select shows it) when none is. */
  selected(input) {
    const items = input.items || [];
    return (items.some((item) => item.value === input.initial) ? input.initial : items[0]?.value) ?? '';
  }

  field(input) {
    const label = document.createElement('label');
    label.className = 'field';
    const name = document.createElement('span');
    name.className = 'field-label';
    name.textContent = input.label || input.id;
    label.append(name);
    let control;
    if (input.type === 'select') {
      control = document.createElement('select');
      for (const item of input.items || []) {
        control.append(new Option(item.label, item.value, false, item.value === input.initial));
      }
      label.append(control);
    } else if (input.type === 'slider') {
      control = document.createElement('input');
      control.type = 'range';
      Object.assign(control, { min: input.min, max: input.max, step: input.step });
      control.value = input.initial;
      const shown = document.createElement('output');
      shown.textContent = control.value;
      control.addEventListener('input', () => {
        shown.textContent = control.value;
      });
      name.append(' ', shown);
      label.append(control);
    } else if (input.type === 'switch') {
      control = document.createElement('input');
      control.type = 'checkbox';
      control.checked = Boolean(input.initial);
      label.append(control);
    } else if (input.type === 'textinput' || input.type === 'numberinput') {
      control = document.createElement('input');
      control.type = input.type === 'numberinput' ? 'number' : 'text';
      control.value = input.initial ?? '';
      label.append(control);
    } else {
      return null; // a kind of field this page does not know: its value stays as it is
    }
    control.id = input.id;
    control.dataset.kind = input.type;
    control.disabled = Boolean(input.disabled);
    if (input.description || input.tooltip) label.title = input.description || input.tooltip;
    return label;
  }

  values() {
    const values = {};
    for (const control of this.fields.querySelectorAll('[data-kind]')) {
      const kind = control.dataset.kind;
      if (kind === 'slider' || kind === 'numberinput') values[control.id] = Number(control.value);
      else if (kind === 'switch') values[control.id] = control.checked;
      else values[control.id] = control.value;
    }
    return values;
  }
}
