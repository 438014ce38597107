//! The panel's data core, natively: decoding the input `frames.ts` sends (the
//! first update, and a refresh slid by a step, timed with the update back) and
//! `build_view`, for 1k and 10k breakers with an hour of 15 s samples (one
//! `statescope_state` frame per machine and state). The browser figures
//! (decode + render + layout/paint in Chromium) come from bench/panel/.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use statescope_bench::frames::{Fleet, Sender, Update};
use statescope_panel::store::FrameStore;
use statescope_panel::view::PanelView;
use statescope_panel::view::{ViewCache, build_view_cached};
use statescope_panel::{PanelInput, build_view};

const END_MS: u64 = 1_800_000_000_000;

fn panel(c: &mut Criterion) {
    let mut decode = c.benchmark_group("decode_input");
    decode.sample_size(10);
    let mut refresh = Vec::new();
    let mut inputs = Vec::new();
    let mut slid_inputs = Vec::new();
    for machines in statescope_bench::bench_sizes(&[1_000, 10_000]) {
        // As frames.ts sends it: descriptions as JSON once, samples as numbers.
        let fleet = Fleet::hour(machines, END_MS);
        let mut sender = Sender::default();
        let first = sender.update(&fleet.panel_input_json());
        let next = sender.update(&fleet.next_refresh().panel_input_json());
        // The step back, as a refresh: every frame named by its id only.
        let back = sender.update(&fleet.panel_input_json());
        decode.bench_with_input(
            BenchmarkId::from_parameter(machines),
            &first,
            |b, (meta, describe, layout, numbers)| {
                b.iter(|| {
                    FrameStore::default()
                        .update(black_box(meta), describe, layout, numbers)
                        .expect("the benchmark input decodes")
                })
            },
        );
        let mut store = FrameStore::default();
        let (input, _) = store
            .update(&first.0, &first.1, &first.2, &first.3)
            .expect("the benchmark input decodes");
        inputs.push((machines, input));
        let (slid, changes) = store.update(&next.0, &next.1, &next.2, &next.3).expect("decodes");
        assert_eq!(changes.new_frames, 0, "a refresh describes no frame again");
        slid_inputs.push((machines, slid));
        refresh.push((machines, store, back, next));
    }
    decode.finish();

    // A refresh whose range slid by one step, on a store holding the range
    // before; timed with the refresh that slides it back, both describing
    // no frame again (as frames.ts sends them).
    let mut group = c.benchmark_group("refresh_input");
    group.sample_size(10);
    for (machines, store, back, next) in &mut refresh {
        group.bench_function(BenchmarkId::from_parameter(*machines), |b| {
            b.iter(|| {
                store.update(&back.0, &back.1, &back.2, &back.3).expect("decodes");
                store
                    .update(black_box(&next.0), &next.1, &next.2, &next.3)
                    .expect("decodes")
            })
        });
    }
    group.finish();

    // The slide alone, as a dashboard's refresh brings it: each timed from
    // a store holding the range before (left by the untimed step back).
    let mut group = c.benchmark_group("slide_input");
    group.sample_size(10);
    for (machines, store, back, next) in &mut refresh {
        /// The timed update, by name: what callgrind's `--toggle-collect` counts alone.
        #[inline(never)]
        fn slid_update(store: &mut FrameStore, (meta, describe, layout, numbers): &Update) -> PanelInput {
            store.update(meta, describe, layout, numbers).expect("decodes").0
        }
        group.bench_function(BenchmarkId::from_parameter(*machines), |b| {
            b.iter_custom(|iters| {
                let mut spent = std::time::Duration::ZERO;
                for _ in 0..iters {
                    store.update(&back.0, &back.1, &back.2, &back.3).expect("decodes");
                    let start = std::time::Instant::now();
                    black_box(slid_update(store, black_box(next)));
                    spent += start.elapsed();
                }
                spent
            })
        });
    }
    group.finish();

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

    // What the panel does on a refresh: the store hands over the frames it
    // keeps, slid by a step, and the view reuses what the same descriptions
    // derived in the build before, and each machine's merge of the samples
    // the two ranges share. Timed: the slide, each from a cache left by a
    // refresh of the range before (untimed).
    let mut view = c.benchmark_group("build_view_refresh");
    view.sample_size(10);
    for ((machines, first), (_, slid)) in inputs.iter().zip(&slid_inputs) {
        let mut cache = ViewCache::default();
        fn build(input: &PanelInput, cache: &mut ViewCache) -> PanelView {
            build_view_cached(input, cache)
                .map_err(|e| e.to_string())
                .expect("the panel draws the fleet")
        }
        /// The timed build, by name: what a profiler (callgrind's
        /// `--toggle-collect`) counts alone.
        #[inline(never)]
        fn slid_build(input: &PanelInput, cache: &mut ViewCache) -> PanelView {
            build(input, cache)
        }
        // The first render: it keeps no machine's merge (a refresh may never come).
        build(first, &mut cache);
        view.bench_with_input(BenchmarkId::from_parameter(machines), slid, |b, slid| {
            b.iter_custom(|iters| {
                let mut spent = std::time::Duration::ZERO;
                for _ in 0..iters {
                    build(first, &mut cache);
                    let start = std::time::Instant::now();
                    black_box(slid_build(black_box(slid), &mut cache));
                    spent += start.elapsed();
                }
                spent
            })
        });
        assert!(cache.reused() > 0, "a refresh reuses what the descriptions derived");
        assert_eq!(cache.folded(), *machines, "a slid refresh merges only the new samples");
    }
    view.finish();
}

criterion_group!(benches, panel);
criterion_main!(benches);
