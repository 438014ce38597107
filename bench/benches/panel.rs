//! The panel's data core, natively: decoding the input `module.ts` sends and
//! `build_view`, for 1k and 10k breakers with an hour of 15 s samples (one
//! `statescope_state` frame per machine and state). The browser figures
//! (decode + render + layout/paint in Chromium) come from bench/panel/.

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use statescope_bench::frames::{Fleet, split_numbers};
use statescope_panel::{PanelInput, build_view};

const END_MS: u64 = 1_800_000_000_000;

fn panel(c: &mut Criterion) {
    let mut decode = c.benchmark_group("decode_input");
    decode.sample_size(10);
    let mut inputs = Vec::new();
    for machines in statescope_bench::bench_sizes(&[1_000, 10_000]) {
        // As module.ts sends it: labels and options as JSON, samples as numbers.
        let (json, numbers) = split_numbers(&Fleet::hour(machines, END_MS).panel_input_json());
        let parts = (json, numbers);
        decode.bench_with_input(BenchmarkId::from_parameter(machines), &parts, |b, (json, numbers)| {
            // The numbers arrive owned (wasm-bindgen's copy into wasm memory): cloning them is setup.
            b.iter_batched(
                || numbers.clone(),
                |numbers| PanelInput::from_parts(black_box(json), numbers).expect("the benchmark input decodes"),
                BatchSize::LargeInput,
            )
        });
        inputs.push((
            machines,
            PanelInput::from_parts(&parts.0, parts.1).expect("the benchmark input decodes"),
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
