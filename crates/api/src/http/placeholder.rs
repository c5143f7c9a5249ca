//! Small SVG placeholder bodies, so that a browser showing a thumbnail URL
//! that failed still draws an icon instead of a broken-image glyph.

/// Which icon a placeholder shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icon {
    /// Malformed request (400).
    BadRequest,
    /// Bad token (403) or missing credentials.
    Forbidden,
    /// Unknown asset, size or route (404).
    NotFound,
    /// Being rendered, try again later (503).
    Pending,
    /// The original cannot be rendered (422) or another error.
    Failed,
}

impl Icon {
    /// The short label drawn under the icon.
    fn label(self) -> &'static str {
        match self {
            Icon::BadRequest => "bad request",
            Icon::Forbidden => "forbidden",
            Icon::NotFound => "not found",
            Icon::Pending => "rendering…",
            Icon::Failed => "cannot render",
        }
    }

    /// An SVG path for the glyph, in a 224×224 box.
    fn glyph(self) -> &'static str {
        match self {
            // A framed picture with a mountain and a sun.
            Icon::NotFound | Icon::BadRequest => {
                "<rect x=\"52\" y=\"52\" width=\"120\" height=\"92\" rx=\"8\" fill=\"none\" stroke=\"#9ca3af\" stroke-width=\"8\"/>\
<path d=\"M60 136l34-38 24 26 16-16 30 28z\" fill=\"#9ca3af\"/><circle cx=\"142\" cy=\"78\" r=\"10\" fill=\"#9ca3af\"/>"
            }
            // A padlock.
            Icon::Forbidden => {
                "<rect x=\"72\" y=\"96\" width=\"80\" height=\"60\" rx=\"8\" fill=\"#9ca3af\"/>\
<path d=\"M86 96V80a26 26 0 0 1 52 0v16\" fill=\"none\" stroke=\"#9ca3af\" stroke-width=\"10\"/>"
            }
            // An hourglass.
            Icon::Pending => "<path d=\"M76 52h72v10l-28 36 28 36v10H76v-10l28-36-28-36z\" fill=\"#9ca3af\"/>",
            // A warning triangle.
            Icon::Failed => {
                "<path d=\"M112 48l64 104H48z\" fill=\"#9ca3af\"/>\
<rect x=\"106\" y=\"84\" width=\"12\" height=\"38\" fill=\"#f3f4f6\"/><rect x=\"106\" y=\"130\" width=\"12\" height=\"12\" fill=\"#f3f4f6\"/>"
            }
        }
    }
}

/// Escapes text for use inside SVG/XML character data.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().take(200) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The SVG document for an icon, with `title` (escaped) as its accessible
/// name, e.g. the failure reason.
pub fn svg(icon: Icon, title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"224\" height=\"224\" viewBox=\"0 0 224 224\" role=\"img\">\
<title>{}</title><rect width=\"224\" height=\"224\" fill=\"#f3f4f6\"/>{}\
<text x=\"112\" y=\"188\" text-anchor=\"middle\" font-family=\"sans-serif\" font-size=\"16\" fill=\"#6b7280\">{}</text></svg>",
        escape(title),
        icon.glyph(),
        icon.label()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_escaped() {
        let body = svg(Icon::Failed, "<script>alert(1)</script> & \"x\"");
        assert!(!body.contains("<script>"));
        assert!(body.contains("&lt;script&gt;"));
        assert!(body.starts_with("<svg ") && body.ends_with("</svg>"));
    }

    #[test]
    fn every_icon_renders() {
        for icon in [
            Icon::BadRequest,
            Icon::Forbidden,
            Icon::NotFound,
            Icon::Pending,
            Icon::Failed,
        ] {
            let body = svg(icon, "t");
            assert!(body.len() < 2048, "{icon:?} placeholder is small");
        }
    }
}
