//! GELF payload compression: detection and bounded inflation.
//!
//! GELF over UDP (and HTTP with `Content-Encoding`) may be gzip- or zlib-compressed; the payload
//! says which by its first bytes (gzip `1f 8b`; zlib a CMF/FLG pair with deflate and a valid
//! check, most often `78 9c`). Inflation is bounded: a 1 KiB datagram can inflate to gigabytes,
//! so we stop at a limit and report the payload as too large instead of following it.

use std::borrow::Cow;
use std::io::Read;

use crate::message::DiagKind;

/// How a payload is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zlib,
}

/// Recognises the compression from the magic bytes.
pub fn detect(payload: &[u8]) -> Compression {
    match payload {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        // zlib: CM = 8 (deflate), CINFO <= 7, and the FCHECK makes CMF*256+FLG a multiple of 31.
        [cmf, flg, ..]
            if cmf & 0x0f == 8
                && cmf >> 4 <= 7
                && (u16::from(*cmf) * 256 + u16::from(*flg)) % 31 == 0 =>
        {
            Compression::Zlib
        }
        _ => Compression::None,
    }
}

/// The payload, inflated if it is compressed, at most `limit` bytes after inflating.
pub fn decompress(payload: &[u8], limit: usize) -> Result<Cow<'_, [u8]>, DiagKind> {
    let mut out = Vec::new();
    let read = match detect(payload) {
        Compression::None => {
            return if payload.len() > limit {
                Err(DiagKind::PayloadTooLarge)
            } else {
                Ok(Cow::Borrowed(payload))
            };
        }
        Compression::Gzip => flate2::read::GzDecoder::new(payload)
            .take(limit as u64 + 1)
            .read_to_end(&mut out),
        Compression::Zlib => flate2::read::ZlibDecoder::new(payload)
            .take(limit as u64 + 1)
            .read_to_end(&mut out),
    };
    match read {
        Err(_) => Err(DiagKind::DecompressFailed),
        Ok(n) if n > limit => Err(DiagKind::PayloadTooLarge),
        Ok(_) => Ok(Cow::Owned(out)),
    }
}

/// Compresses with gzip (for senders and tests).
pub fn gzip(payload: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = enc.write_all(payload);
    enc.finish().unwrap_or_default()
}

/// Compresses with zlib (for senders and tests).
pub fn zlib(payload: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = enc.write_all(payload);
    enc.finish().unwrap_or_default()
}
