//! Receiving one datagram with its control messages, for every datagram source: `/dev/log`
//! (the sender's credentials), UDP (the kernel's drop count), memlogd (passed descriptors).
//! One place calls `recvmsg`; each source says what it wants of the control messages.

use std::io::{self, IoSliceMut};
use std::os::fd::RawFd;

use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrLike, recvmsg};

/// What arrived: its length, the flags (`MSG_TRUNC`: cut by the kernel) and the sender's
/// address, when the socket type has one.
pub(super) struct Received<S> {
    pub(super) len: usize,
    pub(super) flags: MsgFlags,
    pub(super) address: Option<S>,
}

/// Receives one datagram into `buf` (and its control messages into `cmsg`, a `Vec` because
/// nix's `recvmsg` takes one), handing each control message to `each`.
#[allow(clippy::ptr_arg)]
pub(super) fn recv<S: SockaddrLike>(
    fd: RawFd,
    buf: &mut [u8],
    cmsg: &mut Vec<u8>,
    flags: MsgFlags,
    mut each: impl FnMut(ControlMessageOwned),
) -> io::Result<Received<S>> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<S>(fd, &mut iov, Some(cmsg), flags).map_err(io::Error::from)?;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        each(c);
    }
    Ok(Received {
        len: msg.bytes,
        flags: msg.flags,
        address: msg.address,
    })
}
