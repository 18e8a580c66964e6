//! DNS over TCP: length-prefixed messages, answered in order on each connection (as
//! Consul's miekg/dns serves a connection), from the answer cache when it can, else by the
//! full handler. Replies to pipelined queries are written together: the socket is flushed
//! when no further query is already buffered. A connection silent for the idle time is
//! closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_server::net::xfer::Protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::cache::{Rng, Wire};
use super::handler::ConsulDns;

/// Accepts connections on `listener` until `token` is cancelled.
pub(super) async fn serve(
    listener: TcpListener,
    dns: ConsulDns,
    idle: Duration,
    token: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = token.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let conn = connection(stream, peer, dns.clone(), idle, token.clone());
                tokio::spawn(conn);
            }
            Err(e) => {
                tracing::debug!(cause = %e, "DNS TCP accept failed");
                // Out of descriptors and the like: do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    dns: ConsulDns,
    idle: Duration,
    token: CancellationToken,
) {
    let (rd, wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut wr = BufWriter::new(wr);
    let mut rng = Rng::new();
    let cache = Arc::clone(dns.cache());
    let mut query = Vec::with_capacity(512);
    let mut reply = Vec::with_capacity(512);
    loop {
        if rd.buffer().is_empty() && wr.flush().await.is_err() {
            return;
        }
        let read = async {
            let len = rd.read_u16().await?;
            query.resize(usize::from(len), 0);
            rd.read_exact(&mut query).await
        };
        let got = tokio::select! {
            r = tokio::time::timeout(idle, read) => r,
            () = token.cancelled() => return,
        };
        match got {
            Ok(Ok(n)) if n > 0 => {}
            _ => return, // idle, closed, failed, or an empty message
        }
        reply.clear();
        reply.extend_from_slice(&[0, 0]);
        let started = Instant::now();
        let hit = dns.generation().is_some_and(|g| {
            cache.answer_into(Wire::Tcp, &query, g, started, &mut rng, &mut reply)
        });
        if hit {
            super::raw::served_cached(&query, peer, Protocol::Tcp, started);
            dns.count_cached(1, started);
        } else {
            let Some(a) = dns.answer_raw(query.clone(), peer, Protocol::Tcp).await else {
                continue;
            };
            if let Some(g) = a.cacheable {
                cache.insert(Wire::Tcp, &query, g, &a.bytes);
            }
            reply.extend_from_slice(&a.bytes);
        }
        let Ok(n) = u16::try_from(reply.len() - 2) else {
            continue; // cannot happen: replies are encoded within 64 KiB
        };
        reply[..2].copy_from_slice(&n.to_be_bytes());
        if wr.write_all(&reply).await.is_err() {
            return;
        }
    }
}
