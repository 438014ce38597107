// What the panel benchmarks feed the panel, shared by the page (host.tsx) and
// the marshalling benchmark in node (marshal.ts): the generated frames
// (bench/src/frames.rs) as Grafana hands them to a panel.
import {
  applyFieldOverrides,
  compareArrayValues,
  compareDataFrameStructures,
  dateTime,
  LoadingState,
  toDataFrame,
  type GrafanaTheme2,
  type PanelData,
  type PanelPlugin,
} from '@grafana/data';

/** One fleet of the manifest `statescope-bench frames` writes. */
export interface Fleet {
  machines: number;
  first: string;
  next: string;
  from: number;
  to: number;
  next_from: number;
  next_to: number;
  /** The data after each refresh, in order, each one step later than the one before. */
  refreshes: { name: string; from: number; to: number }[];
}

/** Frames as JSON to the PanelData Grafana gives a panel: DataFrames with the
 * plugin's field config applied, over the range `fromMs..toMs`. */
export function panelData(json: object[], fromMs: number, toMs: number, plugin: PanelPlugin, theme: GrafanaTheme2): PanelData {
  const from = dateTime(fromMs);
  const to = dateTime(toMs);
  const series = applyFieldOverrides({
    data: json.map((f) => toDataFrame(f)),
    fieldConfig: plugin.fieldConfigDefaults,
    fieldConfigRegistry: plugin.fieldConfigRegistry,
    replaceVariables: (s: string) => s,
    theme,
    timeZone: 'browser',
  });
  return { state: LoadingState.Done, series, timeRange: { from, to, raw: { from, to } } };
}

/** Grafana's structure revision (scenes' VizPanel.applyFieldConfig): counted
 * up when the frames' names, fields, labels or config differ from the last
 * data's. Returns what stamps each new PanelData, as Grafana does before it
 * renders the panel. */
export function structureRevisions(): (data: PanelData) => PanelData {
  let structureRev = 0;
  let lastSeries: PanelData['series'] = [];
  return (data) => {
    if (!compareArrayValues(data.series, lastSeries, compareDataFrameStructures)) {
      structureRev += 1;
    }
    lastSeries = data.series;
    return { ...data, structureRev };
  };
}
