// The backend half of Grafana's Prometheus datasource, ported from Go
// (grafana/pkg/promlib: converter/prom.go and querydata/response.go), so the
// frames the panel receives here have the shape Grafana's server sends to the
// browser. The browser half (toDataQueryResponse from @grafana/runtime and
// transformV2 from @grafana/prometheus) is Grafana's own code, run unchanged
// by host.tsx. Grafana 13 always uses the "dataplane" shape (the toggle was
// removed in grafana#92218, "default behavior since v10"): the value field is
// named after the series' __name__ and the frame has no name. Not ported:
// exemplars, native histograms, instant and table queries.
import { DataFrameType, FieldType, type DataFrameJSON } from '@grafana/data';

/** One query as a dashboard panel holds it (the subset the harness uses). */
export interface HostQuery {
  refId: string;
  expr: string;
  /** Grafana's default for new queries is "__auto". */
  legendFormat?: string;
}

/** Prometheus's /api/v1/query_range answer (resultType matrix). */
interface PromMatrixResponse {
  status: 'success' | 'error';
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }> };
  error?: string;
  errorType?: string;
}

const LEGEND_AUTO = '__auto';

/** Go's strconv.Quote for the label values Prometheus allows (enough for label text). */
function goQuote(s: string): string {
  return JSON.stringify(s);
}

/** querydata.metricNameFromLabels: `name{a="x", b="y"}` with sorted labels. */
function metricNameFromLabels(labels: Record<string, string>): string {
  const name = labels.__name__;
  const rest = Object.keys(labels)
    .filter((k) => k !== '__name__')
    .map((k) => `${k}=${goQuote(labels[k])}`)
    .sort();
  if (rest.length === 0) {
    return name ?? '{}';
  }
  return `${name ?? ''}{${rest.join(', ')}}`;
}

/** querydata.getName: the legend Grafana's backend puts in displayNameFromDS. */
function legendName(q: HostQuery, labels: Record<string, string>): string {
  let legend = metricNameFromLabels(labels);
  if (q.legendFormat === LEGEND_AUTO) {
    if (Object.keys(labels).length > 0) {
      legend = '';
    }
  } else if (q.legendFormat) {
    legend = q.legendFormat.replace(/\{\{\s*(.+?)\s*\}\}/g, (_m, name: string) => labels[name.trim()] ?? '');
  }
  return legend === '{}' ? q.expr : legend;
}

/** Go's float parsing of Prometheus sample strings (NaN, +Inf, -Inf included). */
function parseSample(v: string): number {
  if (v === '+Inf') {
    return Number.POSITIVE_INFINITY;
  }
  if (v === '-Inf') {
    return Number.NEGATIVE_INFINITY;
  }
  return Number(v);
}

/**
 * Turn a query_range answer into the frames Grafana's backend returns for
 * one query: one "timeseries-multi" frame per series (fields Time, Value with
 * the series labels), or, when there is no series, one empty frame that only
 * carries the executed query string.
 */
export function framesFromQueryRange(q: HostQuery, stepMs: number, body: PromMatrixResponse): DataFrameJSON[] {
  if (body.status !== 'success' || !body.data) {
    throw new Error(`Prometheus: ${body.errorType ?? 'error'}: ${body.error ?? 'unknown error'}`);
  }
  const executedQueryString = `Expr: ${q.expr}\nStep: ${stepMs / 1000}s`;
  const frames: DataFrameJSON[] = body.data.result.map((series): DataFrameJSON => {
    const customName = legendName(q, series.metric);
    const valueConfig = customName ? { displayNameFromDS: customName } : undefined;
    return {
      schema: {
        refId: q.refId,
        meta: { type: DataFrameType.TimeSeriesMulti, typeVersion: [0, 1], custom: { resultType: 'matrix' } },
        fields: [
          // (Go's JSON also carries typeInfo {frame: "time.Time"/"float64"}; the browser ignores it.)
          { name: 'Time', type: FieldType.time, config: { interval: stepMs } },
          {
            name: series.metric.__name__ ?? 'Value',
            type: FieldType.number,
            labels: { ...series.metric },
            config: valueConfig ?? {},
          },
        ],
      },
      data: {
        values: [series.values.map(([t]) => Math.round(t * 1000)), series.values.map(([, v]) => parseSample(v))],
      },
    };
  });
  if (frames.length === 0) {
    frames.push({ schema: { refId: q.refId, meta: {}, fields: [] }, data: { values: [] } });
  }
  frames[0].schema!.meta = { ...frames[0].schema!.meta, executedQueryString };
  return frames;
}
