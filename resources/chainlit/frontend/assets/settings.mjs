// The chat settings dialog, made from the fields the chat server sends (Chainlit input
// widgets: a select for the model, sliders for temperature and answer length). Confirm sends
// every value back; Cancel, Esc or a click outside keeps the settings as they were.

export class SettingsDialog {
  /**
   * @param {HTMLDialogElement} dialog
   * @param {HTMLElement} fields where the fields go
   * @param {(values: object) => void} confirmed
   */
  constructor(dialog, fields, confirmed) {
    this.dialog = dialog;
    this.fields = fields;
    this.inputs = [];
    dialog.addEventListener('close', () => {
      if (dialog.returnValue !== 'confirm') return;
      const values = this.values();
      for (const input of this.inputs) if (input.id in values) input.initial = values[input.id];
      confirmed(values);
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

  open() {
    this.fields.replaceChildren(...this.inputs.map((input) => this.field(input)).filter(Boolean));
    this.dialog.returnValue = '';
    this.dialog.showModal();
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
