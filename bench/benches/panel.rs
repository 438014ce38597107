//! The panel's data core, natively: decoding the input `module.ts` sends and
//! `build_view`, for 1k and 10k breakers with an hour of 15 s samples (one
//! `statescope_state` frame per machine and state). The browser figures
//! (decode + render + layout/paint in Chromium) come from bench/panel/.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use statescope_bench::frames::Fleet;
use statescope_panel::{PanelInput, build_view};

const END_MS: u64 = 1_800_000_000_000;

fn panel(c: &mut Criterion) {
    let mut decode = c.benchmark_group("decode_input");
    decode.sample_size(10);
    let mut inputs = Vec::new();
    for machines in statescope_bench::bench_sizes(&[1_000, 10_000]) {
        let json = Fleet::hour(machines, END_MS).panel_input_json();
        decode.bench_with_input(BenchmarkId::from_parameter(machines), &json, |b, json| {
            b.iter(|| PanelInput::from_json(black_box(json)).expect("the benchmark input decodes"))
        });
        inputs.push((
            machines,
            PanelInput::from_json(&json).expect("the benchmark input decodes"),
        ));
    }
    decode.finish();

    let mut view = c.benchmark_group("build_view");
    view.sample_size(10);
    for (machines, input) in &inputs {
        view.bench_with_input(BenchmarkId::from_parameter(machines), input, |b, input| {
            // An error (no data, shape not recognised) would time the wrong thing.
            b.iter(|| {
                build_view(black_box(input))
                    .map_err(|e| e.to_string())
                    .expect("the panel draws the fleet")
            })
        });
    }
    view.finish();
}

criterion_group!(benches, panel);
criterion_main!(benches);
