//! The sequential specification of one key of the API, for the checker.
//!
//! State: absent, or (value, version). A put creates with version 1 or bumps the
//! version; a put with `?version=N` applies only when the current version is N (0:
//! absent), else answers 412 with the current version and changes nothing. A delete
//! answers 404 when absent; with `?version=N` it applies only at version N, else 412
//! (`docs/API.md`: N > 0 on an absent key is 412 with `current_version` 0; a 404 there
//! is accepted too). A get answers the state. Values are interned to `u32` ids; every
//! write in a run carries a unique value, so a read names the write it saw.

/// The state of one key: `None` when absent, else (value id, version).
pub type KeyState = Option<(u32, u64)>;

/// An operation as the model sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MCall {
    Get,
    Put { value: u32, if_version: Option<u64> },
    Delete { if_version: Option<u64> },
}

impl MCall {
    /// True for puts and deletes.
    pub fn is_write(self) -> bool {
        !matches!(self, MCall::Get)
    }
}

/// An answer as the model sees it. `Unknown`: any answer (the op may still not be
/// linearized at all; that is the checker's business).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MRet {
    Found { value: u32, version: u64 },
    NotFound,
    Written { version: u64 },
    Deleted,
    Mismatch { current_version: u64 },
    Unknown,
}

/// Applies `call` to `state`: the next state when `ret` is what the specification
/// answers there, else None.
pub fn step(state: KeyState, call: MCall, ret: MRet) -> Option<KeyState> {
    let current = state.map_or(0, |(_, v)| v);
    match call {
        MCall::Get => match ret {
            MRet::Found { value, version } => (state == Some((value, version))).then_some(state),
            MRet::NotFound => state.is_none().then_some(state),
            MRet::Unknown => Some(state),
            _ => None,
        },
        MCall::Put { value, if_version } => {
            if if_version.is_none_or(|n| n == current) {
                let next = Some((value, current + 1));
                match ret {
                    MRet::Written { version } => (version == current + 1).then_some(next),
                    MRet::Unknown => Some(next),
                    _ => None,
                }
            } else {
                match ret {
                    MRet::Mismatch { current_version } => {
                        (current_version == current).then_some(state)
                    }
                    MRet::Unknown => Some(state),
                    _ => None,
                }
            }
        }
        MCall::Delete { if_version } => match state {
            None => match (if_version, ret) {
                (_, MRet::NotFound | MRet::Unknown) => Some(None),
                (Some(n), MRet::Mismatch { current_version: 0 }) if n > 0 => Some(None),
                _ => None,
            },
            Some((_, v)) => match if_version {
                Some(n) if n != v => match ret {
                    MRet::Mismatch { current_version } => (current_version == v).then_some(state),
                    MRet::Unknown => Some(state),
                    _ => None,
                },
                _ => match ret {
                    MRet::Deleted | MRet::Unknown => Some(None),
                    _ => None,
                },
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_creates_then_bumps() {
        let s = step(
            None,
            MCall::Put {
                value: 1,
                if_version: None,
            },
            MRet::Written { version: 1 },
        );
        assert_eq!(s, Some(Some((1, 1))));
        let s2 = step(
            Some((1, 1)),
            MCall::Put {
                value: 2,
                if_version: None,
            },
            MRet::Written { version: 2 },
        );
        assert_eq!(s2, Some(Some((2, 2))));
        assert_eq!(
            step(
                Some((1, 1)),
                MCall::Put {
                    value: 2,
                    if_version: None
                },
                MRet::Written { version: 1 }
            ),
            None
        );
    }

    #[test]
    fn cas_put_and_mismatch() {
        let at1 = Some((1, 1));
        let cas = |n| MCall::Put {
            value: 9,
            if_version: Some(n),
        };
        assert_eq!(
            step(at1, cas(1), MRet::Written { version: 2 }),
            Some(Some((9, 2)))
        );
        assert_eq!(
            step(at1, cas(0), MRet::Mismatch { current_version: 1 }),
            Some(at1)
        );
        assert_eq!(step(at1, cas(0), MRet::Written { version: 1 }), None);
        assert_eq!(
            step(None, cas(0), MRet::Written { version: 1 }),
            Some(Some((9, 1)))
        );
        assert_eq!(
            step(None, cas(3), MRet::Mismatch { current_version: 0 }),
            Some(None)
        );
        assert_eq!(step(None, cas(3), MRet::Unknown), Some(None));
    }

    #[test]
    fn deletes() {
        let at2 = Some((1, 2));
        assert_eq!(
            step(at2, MCall::Delete { if_version: None }, MRet::Deleted),
            Some(None)
        );
        assert_eq!(
            step(None, MCall::Delete { if_version: None }, MRet::NotFound),
            Some(None)
        );
        assert_eq!(
            step(None, MCall::Delete { if_version: None }, MRet::Deleted),
            None
        );
        assert_eq!(
            step(
                at2,
                MCall::Delete {
                    if_version: Some(2)
                },
                MRet::Deleted
            ),
            Some(None)
        );
        assert_eq!(
            step(
                at2,
                MCall::Delete {
                    if_version: Some(1)
                },
                MRet::Mismatch { current_version: 2 }
            ),
            Some(at2)
        );
        assert_eq!(
            step(
                None,
                MCall::Delete {
                    if_version: Some(1)
                },
                MRet::Mismatch { current_version: 0 }
            ),
            Some(None)
        );
        assert_eq!(
            step(
                at2,
                MCall::Get,
                MRet::Found {
                    value: 1,
                    version: 2
                }
            ),
            Some(at2)
        );
        assert_eq!(step(at2, MCall::Get, MRet::NotFound), None);
    }
}
