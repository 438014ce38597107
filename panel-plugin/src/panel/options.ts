// The panel's options editor, built from options.schema.json: the options as
// the Rust side (options.rs) defines, reads and checks them, written out by
// `cargo test -p statescope-panel --test options_schema`. Nothing here spells
// an option: add or change one in options.rs.
import { PanelOptionsEditorBuilder } from '@grafana/data';

import schema from './options.schema.json';

/** The saved panel options (camelCase keys); options.rs decodes and checks them. */
export type StatescopeOptions = Record<string, unknown> & { search?: string };

interface Choice {
  value: string;
  label: string;
  description?: string;
}

/** One entry of options.schema.json. */
type OptionSpec = { path: string; name: string; description?: string; category?: string } & (
  | { type: 'radio' | 'select'; default: string; choices: Choice[]; allowCustomValue?: boolean }
  | { type: 'text'; default: string }
  | { type: 'stringArray'; default: string[] }
  | { type: 'number'; default: number; min: number; max: number }
  // Not in the editor: set in the panel's JSON.
  | { type: 'colorMap'; default: Record<string, string> }
);

const OPTIONS = schema.options as OptionSpec[];

export function optionsEditor(builder: PanelOptionsEditorBuilder<StatescopeOptions>) {
  for (const o of OPTIONS) {
    // Keys left out rather than undefined, as a hand-written editor has them.
    const common = {
      path: o.path,
      name: o.name,
      ...(o.description ? { description: o.description } : {}),
      ...(o.category ? { category: [o.category] } : {}),
    };
    switch (o.type) {
      case 'radio':
        builder.addRadio({ ...common, defaultValue: o.default, settings: { options: o.choices } });
        break;
      case 'select':
        builder.addSelect({
          ...common,
          defaultValue: o.default,
          settings: { ...(o.allowCustomValue ? { allowCustomValue: true } : {}), options: o.choices },
        });
        break;
      case 'text':
        builder.addTextInput({ ...common, defaultValue: o.default });
        break;
      case 'stringArray':
        builder.addStringArray({ ...common, defaultValue: o.default });
        break;
      case 'number':
        builder.addNumberInput({ ...common, defaultValue: o.default, settings: { min: o.min, integer: true } });
        break;
      case 'colorMap':
        break;
    }
  }
  return builder;
}
