// Grafana registers its standard option editors and standard field config
// properties at start-up (app.ts: standardEditorsRegistry.setInit(getAllOptionEditors),
// standardFieldConfigEditorRegistry.setInit(getAllStandardFieldConfigs), from
// public/app/core/components/OptionsUI/registry.tsx, which no package exports).
// A plugin's setPanelOptions / useFieldConfig look these up by id, and
// applyFieldOverrides runs their `process` functions, so the host registers
// the same ids, processors and defaults. The host has no options pane, so
// every editor is a component that renders nothing.
import {
  booleanOverrideProcessor,
  dataLinksOverrideProcessor,
  displayNameOverrideProcessor,
  FieldType,
  identityOverrideProcessor,
  numberOverrideProcessor,
  standardEditorsRegistry,
  standardFieldConfigEditorRegistry,
  stringOverrideProcessor,
  thresholdsOverrideProcessor,
  ThresholdsMode,
  valueMappingsOverrideProcessor,
  type FieldConfigPropertyItem,
  type StandardEditorsRegistryItem,
} from '@grafana/data';

const NoEditor = () => null;

const EDITOR_IDS: Array<[string, string]> = [
  ['text', 'Text'],
  ['number', 'Number'],
  ['slider', 'Slider'],
  ['boolean', 'Boolean'],
  ['radio', 'Radio'],
  ['select', 'Select'],
  ['unit', 'Unit'],
  ['links', 'Links'],
  ['stats-picker', 'Stats Picker'],
  ['strings', 'String array'],
  ['timezone', 'Time zone'],
  ['fieldColor', 'Field Color'],
  ['color', 'Color'],
  ['multi-select', 'Multi select'],
  ['field-name', 'Field name'],
  ['dashboard-uid', 'Dashboard'],
  ['mappings', 'Mappings'],
  ['thresholds', 'Thresholds'],
];

function fieldConfig(
  id: string,
  process: FieldConfigPropertyItem['process'],
  shouldApply: FieldConfigPropertyItem['shouldApply'] = () => true,
  defaultValue?: unknown
): FieldConfigPropertyItem {
  return { id, path: id, name: id, editor: NoEditor, override: NoEditor, process, shouldApply, defaultValue, category: ['Standard options'] };
}

export function registerStandardOptions(): void {
  standardEditorsRegistry.setInit(() =>
    EDITOR_IDS.map(([id, name]): StandardEditorsRegistryItem => ({ id, name, description: name, editor: NoEditor }))
  );
  const isNumber = (f: { type: FieldType }) => f.type === FieldType.number;
  standardFieldConfigEditorRegistry.setInit(() => [
    fieldConfig('unit', stringOverrideProcessor),
    fieldConfig('min', numberOverrideProcessor, isNumber),
    fieldConfig('max', numberOverrideProcessor, isNumber),
    fieldConfig('fieldMinMax', booleanOverrideProcessor, isNumber),
    fieldConfig('decimals', numberOverrideProcessor, isNumber),
    fieldConfig('displayName', displayNameOverrideProcessor),
    fieldConfig('color', identityOverrideProcessor),
    fieldConfig('noValue', stringOverrideProcessor),
    fieldConfig('links', dataLinksOverrideProcessor),
    fieldConfig('actions', identityOverrideProcessor),
    fieldConfig('mappings', valueMappingsOverrideProcessor, (f) => f.type !== FieldType.time, []),
    fieldConfig('thresholds', thresholdsOverrideProcessor, () => true, {
      mode: ThresholdsMode.Absolute,
      steps: [
        { value: -Infinity, color: 'green' },
        { value: 80, color: 'red' },
      ],
    }),
    fieldConfig('filterable', booleanOverrideProcessor),
  ]);
}
