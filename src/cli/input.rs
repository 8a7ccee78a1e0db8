//! Where a command's data comes from: an argument, a file (`--file PATH`) or standard
//! input (the argument `-`). Exactly one source must be given.

use super::exit::Failure;
use std::io::Read;
use std::path::Path;

/// Reads the data of a command from the one source given.
pub fn read(arg: Option<&str>, file: Option<&Path>, what: &str) -> Result<Vec<u8>, Failure> {
    match (arg, file) {
        (Some(_), Some(_)) => Err(Failure::usage(format!(
            "give the {what} as an argument, `-` (stdin) or --file, not two of them"
        ))),
        (None, None) => Err(Failure::usage(format!(
            "no {what}: give it as an argument, `-` to read stdin, or --file PATH"
        ))),
        (Some("-"), None) => {
            let mut data = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut data)
                .map_err(|e| Failure::error(format!("reading the {what} from stdin: {e}")))?;
            Ok(data)
        }
        (Some(text), None) => Ok(text.as_bytes().to_vec()),
        (None, Some(path)) => std::fs::read(path).map_err(|e| {
            Failure::error(format!("reading the {what} from {}: {e}", path.display()))
        }),
    }
}
