//! Cost of one routing decision (plan) per request.
//! `cargo bench -p switchyard-router`
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard_router::plan::{EndpointSignal, RequestFacts, no_signals, plan};
use switchyard_router::{Admission, Catalog, EndpointSpec, ModelSpec, ProviderPrefs};

fn model(endpoints: usize) -> ModelSpec {
    let mut t = String::from(
        "id = \"bench/m\"\nname = \"M\"\ncontext_length = 8192\nsupported_parameters = [\"tools\", \"max_tokens\"]\n",
    );
    for i in 0..endpoints {
        t.push_str(&format!(
            "[[endpoints]]\nprovider = \"p{i}\"\nmodel = \"m{i}\"\npricing = {{ prompt = \"0.00000{}\", completion = \"0.00000{}\" }}\n",
            i + 1,
            i + 2
        ));
    }
    toml::from_str(&t).unwrap()
}

fn bench(c: &mut Criterion) {
    let builtin = Catalog::builtin().unwrap();
    for n in [1usize, 5] {
        let mut catalog = builtin.clone();
        catalog.upsert(model(n)).unwrap();
        let facts = RequestFacts {
            params: vec!["max_tokens"],
            images: 0,
        };
        let default = ProviderPrefs::default();
        let mut rand = fastrand_f64();
        c.bench_function(
            &format!("plan: default load balancing, {n} endpoint(s)"),
            |b| {
                b.iter(|| {
                    black_box(
                        plan(
                            &catalog,
                            &["bench/m"],
                            &default,
                            &facts,
                            |_| true,
                            &no_signals,
                            &mut rand,
                        )
                        .unwrap(),
                    )
                })
            },
        );
        let prefs = ProviderPrefs::parse(
            r#"{"sort":"throughput","ignore":["p0"],"max_price":{"prompt":10}}"#,
        )
        .unwrap();
        let signal = |e: &EndpointSpec| EndpointSignal {
            admission: if e.provider == "p2" {
                Admission::Degraded
            } else {
                Admission::Healthy
            },
            ttfb_ms: Some(100.0),
            throughput_tps: Some(e.model.len() as f64),
        };
        c.bench_function(
            &format!("plan: sort+filters+health, {n} endpoint(s)"),
            |b| {
                b.iter(|| {
                    black_box(plan(
                        &catalog,
                        &["bench/m"],
                        &prefs,
                        &facts,
                        |_| true,
                        &signal,
                        &mut rand,
                    ))
                })
            },
        );
    }
}

fn fastrand_f64() -> impl FnMut() -> f64 {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
