// The part of Grafana's template service (public/app/features/templating:
// template_srv.ts, macroRegistry.ts, dataMacros.ts fieldMacro,
// templateProxies.ts) that a panel's replaceVariables uses for field
// templates: `${__field.name}`, `${__field.displayName}`,
// `${__field.labels.<name>}`, `${__field.formattedLabels}`, read from the
// field's data context (field.state.scopedVars.__dataContext, which
// applyFieldOverrides sets). The host has no dashboard variables; anything
// else is left as written, as Grafana leaves unknown variables.
import { formatLabels, getFieldDisplayName, type InterpolateFunction, type ScopedVars } from '@grafana/data';
import get from 'lodash/get';

// template_srv.ts variableRegex: $var, [[var:fmt]], ${var.path:fmt}
const VARIABLE = /\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\${(\w+)(?:\.([^:^}]+))?(?::([^}]+))?}/g;

export const replaceVariables: InterpolateFunction = (target: string, scopedVars?: ScopedVars) =>
  target.replace(VARIABLE, (match, var1, var2, _fmt2, var3, fieldPath) => {
    const name = var1 || var2 || var3;
    const context = scopedVars?.__dataContext?.value as
      | { frame?: Parameters<typeof getFieldDisplayName>[1]; field?: Parameters<typeof getFieldDisplayName>[0]; data?: Parameters<typeof getFieldDisplayName>[2] }
      | undefined;
    if (name !== '__field' || !context?.field) {
      return match;
    }
    const { field, frame, data } = context;
    const proxy = {
      name: field.name,
      displayName: getFieldDisplayName(field, frame, data),
      labels: field.labels ?? {},
      formattedLabels: formatLabels(field.labels ?? {}),
    };
    const value = fieldPath ? get(proxy, fieldPath) : undefined;
    return value === undefined || value === null ? '' : String(value);
  });
