//! Sealed memfds: the zero-copy payload kdbus passes by reference
//! (`KDBUS_ITEM_PAYLOAD_MEMFD` only takes fully sealed memfds, spec §8.2).

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;

use rustix::fs::{fcntl_add_seals, memfd_create, MemfdFlags, SealFlags};

use crate::error::{Error, Result};

/// The seals kdbus requires before it accepts a memfd.
pub const KDBUS_SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::WRITE)
    .union(SealFlags::SEAL);

/// A memfd holding `data`, sealed so that kdbus accepts it.
pub fn sealed_memfd(name: &str, data: &[u8]) -> Result<OwnedFd> {
    sealed_memfd_with(name, |file| file.write_all(data))
}

/// A memfd filled by `fill`, then sealed.
pub fn sealed_memfd_with(
    name: &str,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<OwnedFd> {
    let fd = memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .map_err(|e| Error::system("memfd_create", e))?;
    let mut file = File::from(fd);
    fill(&mut file).map_err(|e| {
        Error::system(
            "fill memfd",
            rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO),
        )
    })?;
    fcntl_add_seals(&file, KDBUS_SEALS).map_err(|e| Error::system("seal memfd", e))?;
    Ok(file.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::fcntl_get_seals;

    #[test]
    fn memfd_is_sealed_and_holds_the_data() {
        let fd = sealed_memfd("test", b"payload").unwrap();
        let seals = fcntl_get_seals(&fd).unwrap();
        assert!(seals.contains(KDBUS_SEALS));
        let mut buf = [0u8; 7];
        rustix::io::pread(&fd, &mut buf, 0).unwrap();
        assert_eq!(&buf, b"payload");
        // Sealed: writing fails.
        assert!(rustix::io::pwrite(&fd, b"x", 0).is_err());
    }
}
