//! An error as the user reads it: the chain of causes, each said once, with the values it
//! quotes from files made printable (control characters escaped, overlong words cut).

/// The longest run of characters without white space that a message shows whole: a value
/// from a file (a CSV header, a key) can be megabytes long.
const LONGEST_WORD: usize = 200;

/// The message of `error`'s chain: each cause appended unless the text so far already
/// says it (errors that show their source in their own message would say it twice).
pub fn render(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for link in error.chain() {
        let said = link.to_string();
        if text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    printable(&text)
}

/// `text` with control characters other than line breaks escaped (`\0`, `\r`, `\u{1b}`)
/// and each word over [`LONGEST_WORD`] characters cut, saying how much was cut.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4096));
    let mut word = 0usize;
    let mut cut = 0usize;
    let end_cut = |out: &mut String, cut: &mut usize| {
        if *cut > 0 {
            out.push_str(&format!("…[{cut} more characters]"));
            *cut = 0;
        }
    };
    for c in text.chars() {
        if c == '\n' || c == ' ' || c == '\t' {
            end_cut(&mut out, &mut cut);
            word = 0;
            out.push(c);
            continue;
        }
        word += 1;
        if word > LONGEST_WORD {
            cut += 1;
            continue;
        }
        match c {
            '\0' => out.push_str("\\0"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    end_cut(&mut out, &mut cut);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read x.toml: {source}")]
    struct Shows {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_the_message_already_shows_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file (os error 2)");
        let error = anyhow::Error::new(Shows { source: io });
        assert_eq!(
            render(&error),
            "cannot read x.toml: no such file (os error 2)"
        );
        let context = anyhow::anyhow!("inner").context("outer");
        assert_eq!(render(&context), "outer: inner");
    }

    #[test]
    fn control_characters_are_escaped_and_long_words_cut() {
        assert_eq!(printable("a\0b\rc\u{1b}d\nnext"), "a\\0b\\rc\\u{1b}d\nnext");
        let long = format!("found `{}` here", "x".repeat(1000));
        let shown = printable(&long);
        assert_eq!(
            shown,
            format!("found `{}…[802 more characters] here", "x".repeat(199))
        );
    }
}
