//! `gelf_http`: Graylog's `POST /gelf`, with the HTTP status as the receiver's answer.
//!
//! - `2xx` accepts (the records leave the queue);
//! - `429` is the receiver asking for time: nothing is accepted, and the next attempt waits
//!   what `Retry-After` says (seconds), not the backoff;
//! - `5xx`, timeouts and connection errors are the receiver's trouble: retried with backoff;
//! - any other `4xx` says these records will never be accepted: they are written to a
//!   dead-letter file (`<state_dir>/dead-letter/<destination>.jsonl`, with the status and the
//!   receiver's reason), counted, and leave the queue, so one bad record cannot block the rest.
//!
//! One request per record by default (what Graylog's GELF HTTP input takes); `bulk = true`
//! sends a batch as one newline-delimited body. Bodies are gzipped unless `gzip = false`;
//! `keep_alive = false` closes the connection after each request.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use edgelog_codec::gelf::compress;
use edgelog_queue::Record;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};

use super::{Outcome, Transport};
use crate::config::reader::{self, Diagnostics, Section};
use crate::destinations::network::{HttpDestConfig, TransportConfig};

pub(crate) const TYPE: crate::component::DestinationType = crate::component::DestinationType {
    name: "gelf_http",
    read: |d, s, dirs| crate::destinations::network::read(d, s, dirs, read),
};

/// The URL (the destination's address; empty when it is missing or bad, which is reported)
/// and how to post to it.
fn read(d: &mut Diagnostics<'_>, s: &mut Section<'_, '_>) -> TransportConfig {
    let url = s.required(d, "url", |v| {
        let u = reader::string(v)?;
        match u.split_once("://") {
            Some(("http" | "https", rest)) if !rest.is_empty() => Ok(u),
            _ => Err(format!(
                "invalid url {u:?}: expected http://HOST:PORT/PATH or https://…"
            )),
        }
    });
    let http = HttpDestConfig {
        url: url.unwrap_or_default(),
        bulk: s.value(d, "bulk", reader::boolean).unwrap_or(false),
        keep_alive: s.value(d, "keep_alive", reader::boolean).unwrap_or(true),
        gzip: s.value(d, "gzip", reader::boolean).unwrap_or(true),
        token: s.value(d, "token", reader::string),
        timeout: s
            .value(d, "timeout", reader::positive_duration)
            .unwrap_or(Duration::from_secs(30)),
    };
    TransportConfig::GelfHttp(http)
}

/// An HTTP client for one destination.
#[derive(Debug, Clone)]
pub(super) struct Poster {
    client: reqwest::Client,
    cfg: HttpDestConfig,
}

impl Poster {
    pub(super) fn new(
        cfg: &HttpDestConfig,
        tls: Option<tokio_rustls::rustls::ClientConfig>,
    ) -> anyhow::Result<Poster> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(t) = &cfg.token {
            let v = HeaderValue::from_str(&format!("Bearer {t}"))
                .context("the token is not a valid header value")?;
            headers.insert(header::AUTHORIZATION, v);
        }
        if cfg.gzip {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        if !cfg.keep_alive {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        let mut b = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(cfg.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("edgelogd/", env!("CARGO_PKG_VERSION")));
        if !cfg.keep_alive {
            b = b.pool_max_idle_per_host(0);
        }
        if let Some(tls) = tls {
            b = b.use_preconfigured_tls(tls);
        }
        Ok(Poster {
            client: b.build().context("building the HTTP client")?,
            cfg: cfg.clone(),
        })
    }

    async fn post(
        &self,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Option<Duration>, String), anyhow::Error> {
        let body = if self.cfg.gzip {
            compress::gzip(&body)
        } else {
            body
        };
        let resp = self
            .client
            .post(&self.cfg.url)
            .body(body)
            .send()
            .await
            .map_err(|e| anyhow!("POST {}: {e}", self.cfg.url))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = resp.text().await.unwrap_or_default();
        Ok((status, retry_after, text.trim().chars().take(300).collect()))
    }

    /// Sends `batch` (GELF JSON payloads) and sorts the records by what the receiver said.
    pub(super) async fn send(&self, batch: &[Record]) -> Outcome {
        let mut out = Outcome::default();
        let groups: Vec<&[Record]> = if self.cfg.bulk {
            vec![batch]
        } else {
            batch.chunks(1).collect()
        };
        for group in groups {
            let mut body = Vec::new();
            for (i, r) in group.iter().enumerate() {
                if i > 0 {
                    body.push(b'\n');
                }
                body.extend_from_slice(&r.payload);
            }
            let seqs = group.iter().map(|r| r.seq);
            match self.post(body).await {
                Ok((status, _, _)) if status.is_success() => out.accepted.extend(seqs),
                Ok((StatusCode::TOO_MANY_REQUESTS, wait, _)) => {
                    out.retry_after = Some(wait.unwrap_or(Duration::from_secs(1)));
                    out.error = Some(anyhow!("{}: 429 Too Many Requests", self.cfg.url));
                    return out;
                }
                Ok((status, _, text)) if status.is_client_error() => {
                    let reason = format!("{status} {text}");
                    out.dead.extend(seqs.map(|s| (s, reason.clone())));
                }
                Ok((status, _, text)) => {
                    out.error = Some(anyhow!("{}: {status} {text}", self.cfg.url));
                    return out;
                }
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
            }
        }
        out
    }
}

/// HTTP needs no connection of its own: requests connect (and keep connections) themselves.
impl Transport for Poster {
    async fn connect(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    fn connected(&self) -> bool {
        true
    }

    async fn send(&mut self, batch: &[Record]) -> Outcome {
        Poster::send(self, batch).await
    }

    fn disconnect(&mut self) {}
}
