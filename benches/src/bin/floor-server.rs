//! The floor for `cargo xtask bench-load`: the most a hyper 1 + Tokio HTTP/1.1 server can
//! answer on this machine. It takes the AWS agent's command line (`--config FILE`, reading
//! only `http_port`) and token (`AWS_TOKEN`), checks the `X-Aws-Parameters-Secrets-Token`
//! header, and answers `FLOOR_BODY_BYTES` fixed bytes (default 200): no cache, no parsing,
//! no routing. Not a product: a ruler for `lockbox serve` and the agent.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut port = 2773u16;
    while let Some(arg) = args.next() {
        if arg == "--config" {
            let path = args.next().expect("--config takes a file");
            let text = std::fs::read_to_string(&path).expect("readable config");
            for line in text.lines() {
                if let Some(v) = line.trim().strip_prefix("http_port") {
                    port = v
                        .trim()
                        .trim_start_matches('=')
                        .trim()
                        .trim_matches('"')
                        .parse()
                        .expect("http_port is a port");
                }
            }
        }
    }
    let token: Bytes = std::env::var("AWS_TOKEN").expect("AWS_TOKEN").into();
    let size = std::env::var("FLOOR_BODY_BYTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200usize);
    let body = Bytes::from(vec![b'x'; size]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .await
            .expect("bind");
        println!("floor listening on http://127.0.0.1:{port}");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (token, body) = (token.clone(), body.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    let ok = req.uri().path() == "/ping"
                        || req
                            .headers()
                            .get("x-aws-parameters-secrets-token")
                            .is_some_and(|v| v.as_bytes() == token.as_ref());
                    let mut r = Response::new(Full::new(if ok {
                        body.clone()
                    } else {
                        Bytes::from_static(b"Bad Token")
                    }));
                    if !ok {
                        *r.status_mut() = StatusCode::FORBIDDEN;
                    }
                    async move { Ok::<_, Infallible>(r) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
