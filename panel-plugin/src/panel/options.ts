// The panel's options: what is saved in the dashboard (read by the Rust side,
// options.rs, under the same camelCase keys) and the options editor.
import { PanelOptionsEditorBuilder } from '@grafana/data';

/** The saved panel options; the Rust side (options.rs) reads the same camelCase keys. */
export interface StatescopeOptions {
  view: 'both' | 'diagram' | 'machines';
  shape: 'auto' | 'one_hot' | 'enum';
  stateLabel: string;
  identityLabels: string[];
  kind: string;
  flappingThreshold: number;
  flappingWindowMinutes: number;
  tiles: 'auto' | 'full' | 'dense';
  search: string;
  stateFilter: string;
  sort: 'worst_first' | 'name' | 'time_in_state' | 'transitions';
  maxTiles: number;
  stateColors?: Record<string, string>;
}

export function optionsEditor(builder: PanelOptionsEditorBuilder<StatescopeOptions>) {
  return builder
    .addRadio({
      path: 'view',
      name: 'View',
      defaultValue: 'both',
      settings: {
        options: [
          { value: 'both', label: 'Both' },
          { value: 'diagram', label: 'Diagram' },
          { value: 'machines', label: 'Machines' },
        ],
      },
    })
    .addSelect({
      path: 'shape',
      name: 'Data shape',
      description: 'How a state is read: one 1/0 series per state with the state in a label, or one series whose value is the state.',
      category: ['Data'],
      defaultValue: 'auto',
      settings: {
        options: [
          { value: 'auto', label: 'Auto', description: 'One-hot when the series carry the state label, else enum' },
          { value: 'one_hot', label: 'One-hot (state in a label)', description: 'statescope_state, resilience4j_circuitbreaker_state' },
          { value: 'enum', label: 'Enum (state in the value)', description: 'circuit_breaker_state 0/1/2, or value mappings' },
        ],
      },
    })
    .addTextInput({
      path: 'stateLabel',
      name: 'State label',
      description: 'Label holding the state name on one-hot series.',
      category: ['Data'],
      defaultValue: 'state',
    })
    .addStringArray({
      path: 'identityLabels',
      name: 'Identity labels',
      description: 'Labels that identify a machine, in the order its name shows them (e.g. provider, key_id). Empty: detect them.',
      category: ['Data'],
      defaultValue: [],
    })
    .addSelect({
      path: 'kind',
      name: 'Kind',
      description: 'Which states and transitions the machines have. Type the name of a custom kind to use it.',
      category: ['Data'],
      defaultValue: 'auto',
      settings: {
        allowCustomValue: true,
        options: [
          { value: 'auto', label: 'Auto', description: 'From the kind label, else circuit_breaker when the states fit, else from the data' },
          { value: 'circuit_breaker', label: 'circuit_breaker' },
          { value: 'worker', label: 'worker' },
          { value: 'from_data', label: 'From the data', description: 'States and transitions seen in the data' },
        ],
      },
    })
    .addNumberInput({
      path: 'flappingThreshold',
      name: 'Flapping threshold',
      description: 'A machine that trips (ok -> trouble, e.g. closed -> open) at least this many times within the flapping window is marked flapping.',
      category: ['Machines'],
      defaultValue: 3,
      settings: { min: 1, integer: true },
    })
    .addNumberInput({
      path: 'flappingWindowMinutes',
      name: 'Flapping window (minutes)',
      category: ['Machines'],
      defaultValue: 15,
      settings: { min: 1, integer: true },
    })
    .addRadio({
      path: 'tiles',
      name: 'Tiles',
      description: 'Auto: small cells when full tiles would take more than 3 screens.',
      category: ['Machines'],
      defaultValue: 'auto',
      settings: {
        options: [
          { value: 'auto', label: 'Auto' },
          { value: 'full', label: 'Full' },
          { value: 'dense', label: 'Dense' },
        ],
      },
    })
    .addSelect({
      path: 'sort',
      name: 'Sort machines',
      category: ['Machines'],
      defaultValue: 'worst_first',
      settings: {
        options: [
          { value: 'worst_first', label: 'Worst first' },
          { value: 'name', label: 'Name' },
          { value: 'time_in_state', label: 'Longest in state' },
          { value: 'transitions', label: 'Most transitions' },
        ],
      },
    })
    .addTextInput({
      path: 'search',
      name: 'Search',
      description: 'Show only machines whose name, kind or labels contain this text. Dashboard variables work.',
      category: ['Machines'],
      defaultValue: '',
    })
    .addTextInput({
      path: 'stateFilter',
      name: 'State filter',
      description: 'Show only machines in this state (clicking a state in the diagram does the same).',
      category: ['Machines'],
      defaultValue: '',
    })
    .addNumberInput({
      path: 'maxTiles',
      name: 'Max tiles',
      description: 'Most machine tiles to show; 0 shows all (the grid is virtualised, so all is fine).',
      category: ['Machines'],
      defaultValue: 0,
      settings: { min: 0, integer: true },
    });
}
