//! `grpc-echo PORT`: the echo service of `grpc_peer` on 127.0.0.1:PORT
//! (h2c), until killed; the upstream of `bench/run`'s gRPC scenario.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args()
        .nth(1)
        .ok_or("usage: grpc-echo PORT")?
        .parse()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    grpc_peer::serve(listener).await;
    Ok(())
}
