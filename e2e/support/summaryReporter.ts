// Prints one final line after the 'list' reporter: counts per outcome, the
// reasons of skipped tests (only the Grafana suite may skip, and says why),
// and the wall time. scripts/test.sh output ends with it.
import type { FullResult, Reporter, TestCase, TestResult } from '@playwright/test/reporter';

export default class SummaryReporter implements Reporter {
  private counts: Record<string, number> = {};
  private skipReasons = new Set<string>();

  onTestEnd(test: TestCase, result: TestResult) {
    this.counts[result.status] = (this.counts[result.status] ?? 0) + 1;
    if (result.status === 'skipped') {
      for (const a of test.annotations) {
        if (a.type === 'skip' && a.description) {
          this.skipReasons.add(a.description);
        }
      }
    }
  }

  onEnd(result: FullResult) {
    const parts = ['passed', 'failed', 'timedOut', 'interrupted', 'skipped']
      .filter((k) => this.counts[k])
      .map((k) => `${this.counts[k]} ${k}`);
    const reasons = this.skipReasons.size ? ` (skipped: ${[...this.skipReasons].join('; ')})` : '';
    console.log(`\ne2e: ${result.status}: ${parts.join(', ') || 'no tests'}${reasons} in ${(result.duration / 1000).toFixed(1)} s`);
  }

  printsToStdio() {
    return true;
  }
}
