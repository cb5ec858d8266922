//! `grpc-load`: a bounded gRPC unary load client for `bench/run`.
//!
//! `grpc-load URL CONCURRENCY REQUESTS [METADATA=VALUE...]` sends
//! `REQUESTS` unary calls from `CONCURRENCY` tasks sharing one HTTP/2
//! connection (as a gRPC client does) and prints one JSON line:
//! `{"requests":N,"errors":N,"seconds":S,"rps":R,"p50_ms":..,"p99_ms":..}`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use grpc_peer::{Client, EchoRequest};
use tonic::metadata::{MetadataKey, MetadataValue};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, concurrency, requests, metadata @ ..] = args.as_slice() else {
        return Err("usage: grpc-load URL CONCURRENCY REQUESTS [NAME=VALUE...]".into());
    };
    let concurrency: usize = concurrency.parse()?;
    let requests: usize = requests.parse()?;
    let metadata: Vec<(MetadataKey<_>, MetadataValue<_>)> = metadata
        .iter()
        .map(|pair| {
            let (name, value) = pair.split_once('=').ok_or("metadata is NAME=VALUE")?;
            Ok::<_, Box<dyn std::error::Error>>((name.parse()?, value.parse()?))
        })
        .collect::<Result<_, _>>()?;
    let metadata = Arc::new(metadata);
    let client = Client::connect(url).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (mut client, next, metadata) =
                (client.clone(), Arc::clone(&next), Arc::clone(&metadata));
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0usize;
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    let mut request = tonic::Request::new(EchoRequest::say("bench"));
                    for (name, value) in metadata.iter() {
                        request.metadata_mut().insert(name.clone(), value.clone());
                    }
                    let sent = Instant::now();
                    match client.unary(request).await {
                        Ok(_) => latencies.push(sent.elapsed()),
                        Err(status) => {
                            if errors == 0 {
                                eprintln!("grpc-load: {status}");
                            }
                            errors += 1;
                        }
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::with_capacity(requests);
    let mut errors = 0;
    for task in tasks {
        let (done, failed) = task.await?;
        latencies.extend(done);
        errors += failed;
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let quantile = |q: f64| {
        if latencies.is_empty() {
            return 0.0;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((latencies.len() - 1) as f64 * q).round() as usize;
        latencies[i].as_secs_f64() * 1000.0
    };
    #[allow(clippy::cast_precision_loss)]
    let rps = latencies.len() as f64 / seconds;
    println!(
        "{}",
        serde_json::json!({
            "requests": latencies.len(),
            "errors": errors,
            "seconds": seconds,
            "rps": rps,
            "p50_ms": quantile(0.5),
            "p99_ms": quantile(0.99),
        })
    );
    Ok(())
}
