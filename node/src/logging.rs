//! Log output. Field values often carry what a client sent (a login, a path, a header), so the
//! text format escapes control characters in every value: a login holding a newline or a
//! terminal escape cannot start a forged log line or repaint an operator's terminal. The JSON
//! format escapes them already.

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{debug_fn, Writer};
use tracing_subscriber::fmt::{FormatFields, MakeWriter};
use tracing_subscriber::EnvFilter;

/// Writes `text` with every control character (newlines, escapes, DEL, C1 codes) as a visible
/// escape such as `\n` or `\u{1b}`.
pub fn escape_controls(text: &str, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    for c in text.chars() {
        if c.is_control() {
            write!(out, "{}", c.escape_default())?;
        } else {
            out.write_char(c)?;
        }
    }
    Ok(())
}

/// The text format's fields: `name=value` pairs, the message bare, control characters escaped.
pub fn escaping_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    debug_fn(
        |w: &mut Writer<'_>, field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
            let text = format!("{value:?}");
            if field.name() != "message" {
                write!(w, "{field}=")?;
            }
            escape_controls(&text, w)
        },
    )
    .delimited(" ")
}

/// Installs the process's subscriber: `ROOMRAFT_LOG` or `default` as the filter, JSON lines or
/// escaped text, written by `writer`; colours only when `ansi`.
pub fn init<W>(json: bool, default: &str, ansi: bool, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_env("ROOMRAFT_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    if json {
        builder.json().init();
    } else {
        builder.fmt_fields(escaping_fields()).init();
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    /// One event logged through the text format; its whole output.
    fn logged(event: impl FnOnce()) -> String {
        let buf = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(buf.clone())
            .with_ansi(false)
            .fmt_fields(escaping_fields())
            .finish();
        tracing::subscriber::with_default(subscriber, event);
        let out = buf.0.lock().unwrap().clone();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_value_cannot_start_a_new_line_or_send_terminal_escapes() {
        let forged =
            "ann\n2026-12-02T09:00:00Z  INFO roomraft: admin signed in \u{1b}[2J\r\u{7f}\u{85}";
        for out in [
            logged(|| tracing::warn!(account = %forged, "sign-in refused")),
            logged(|| tracing::warn!(account = ?forged, "sign-in refused")),
            logged(|| tracing::warn!(account = forged, "sign-in refused")),
            logged(|| tracing::warn!("sign-in refused for {forged}")),
        ] {
            assert_eq!(out.matches('\n').count(), 1, "one line only: {out:?}");
            assert!(out.ends_with('\n'), "{out:?}");
            assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
            assert!(
                out.contains(r"ann\n2026-12-02"),
                "escaped, not dropped: {out:?}"
            );
            assert!(out.contains(r"\u{1b}[2J"), "{out:?}");
        }
    }

    #[test]
    fn ordinary_values_read_as_before() {
        let out = logged(|| tracing::info!(status = 200, client = %"192.0.2.1", "request"));
        assert!(
            out.contains("request status=200 client=192.0.2.1"),
            "{out:?}"
        );
    }
}
