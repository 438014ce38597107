// Statescope state machines panel: a thin shell around the Rust/WebAssembly
// app, laid out as @grafana/create-plugin lays out a panel: this file
// registers the panel; panel/options.ts holds the options and their editor,
// panel/StatescopePanel.ts the component, panel/wasm.ts the loader and
// panel/frames.ts the data frames marshalling. Everything else is Rust.
import { FieldConfigProperty, PanelPlugin } from '@grafana/data';

import { optionsEditor, type StatescopeOptions } from './panel/options';
import { StatescopePanel } from './panel/StatescopePanel';

export type { StatescopeOptions };

export const plugin = new PanelPlugin<StatescopeOptions>(StatescopePanel)
  .useFieldConfig({
    // Value mappings, colours, display names, units and data links apply;
    // number formatting options do not (the panel shows states, not values).
    disableStandardOptions: [
      FieldConfigProperty.Min,
      FieldConfigProperty.Max,
      FieldConfigProperty.Decimals,
      FieldConfigProperty.Thresholds,
      FieldConfigProperty.NoValue,
      FieldConfigProperty.FieldMinMax,
      FieldConfigProperty.Actions,
    ],
  })
  .setPanelOptions(optionsEditor);
