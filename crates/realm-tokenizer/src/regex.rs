//! A small backtracking regex engine with the semantics of C++ `std::regex` (ECMAScript grammar),
//! which is what llama.cpp runs for every pre-tokenizer regex that has no hand-written splitter.
//!
//! llama.cpp `src/unicode.cpp` (`unicode_regex_split`, commit
//! 0c1e57098bba43ac29e6e3b677cdceebdd22334f) never shows `\p{..}` to `std::regex`: a regex that
//! uses a category runs over a *collapsed* text where every code point >= 128 becomes one byte
//! (0x0B for whitespace, 0xD1..0xD5 for N/L/P/M/S, 0xD0 otherwise) and `\p{X}` becomes a class of
//! that byte plus the ASCII members (note: ASCII `~` is in neither `\p{P}` nor `\p{S}` there).
//! Regexes without categories run as `std::wregex` over code points, non-ASCII whitespace
//! replaced by 0x0B. In both cases `\s` is the C locale's `[\t\n\v\f\r ]`. This engine takes the
//! symbol stream prepared that way ([`Mode`]) and matches with ECMAScript priorities: leftmost
//! start, then alternatives in order, greedy quantifiers longest first, lookaheads atomic.

/// How the input symbols were prepared, which decides what `\p{..}` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Collapsed bytes (the regex uses `\p{..}` and must be ASCII).
    Collapsed,
    /// Code points, non-ASCII whitespace replaced by 0x0B.
    Wide,
}

/// Collapsed symbol of a category (`k_ucat_cpt`).
pub const COLLAPSED_NUMBER: u32 = 0xD1;
pub const COLLAPSED_LETTER: u32 = 0xD2;
pub const COLLAPSED_PUNCTUATION: u32 = 0xD3;
pub const COLLAPSED_ACCENT_MARK: u32 = 0xD4;
pub const COLLAPSED_SYMBOL: u32 = 0xD5;
pub const COLLAPSED_OTHER: u32 = 0xD0;

#[derive(Debug, Clone)]
enum Item {
    Range(u32, u32),
    Space(bool),
    Digit(bool),
    Word(bool),
}

/// A set of symbols (one bracket expression or escape).
#[derive(Debug, Clone)]
struct Class {
    negated: bool,
    items: Vec<Item>,
    /// Precomputed answer for symbols below 256.
    low: Vec<bool>,
}

fn is_space(c: u32) -> bool {
    c == 0x20 || (0x09..=0x0D).contains(&c)
}

fn is_word(c: u32) -> bool {
    char::from_u32(c).is_some_and(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

impl Class {
    fn new(negated: bool, items: Vec<Item>) -> Class {
        let mut class = Class { negated, items, low: Vec::new() };
        class.low = (0u32..256).map(|c| class.slow_matches(c)).collect();
        class
    }

    fn slow_matches(&self, c: u32) -> bool {
        let hit = self.items.iter().any(|item| match *item {
            Item::Range(a, b) => a <= c && c <= b,
            Item::Space(yes) => is_space(c) == yes,
            Item::Digit(yes) => (0x30..=0x39).contains(&c) == yes,
            Item::Word(yes) => is_word(c) == yes,
        });
        hit != self.negated
    }

    fn matches(&self, c: u32) -> bool {
        match self.low.get(c as usize) {
            Some(&b) => b,
            None => self.slow_matches(c),
        }
    }
}

#[derive(Debug, Clone)]
enum Node {
    Class(Class),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat { node: Box<Node>, min: u32, max: Option<u32>, greedy: bool },
    Look { node: Box<Node>, negate: bool },
    Start,
    End,
}

impl Node {
    fn nullable(&self) -> bool {
        match self {
            Node::Class(_) => false,
            Node::Concat(v) => v.iter().all(Node::nullable),
            Node::Alt(v) => v.iter().any(Node::nullable),
            Node::Repeat { node, min, .. } => *min == 0 || node.nullable(),
            Node::Look { .. } | Node::Start | Node::End => true,
        }
    }
}

/// Collapsed-mode members of `\p{X}` (`k_ucat_cpt` + `k_ucat_map`).
fn category_items(name: &str) -> Option<Vec<Item>> {
    let r = |a: u8, b: u8| Item::Range(u32::from(a), u32::from(b));
    let one = |c: u32| Item::Range(c, c);
    Some(match name {
        "N" => vec![one(COLLAPSED_NUMBER), r(b'0', b'9')],
        "L" | "Lu" | "Ll" | "Lt" | "Lm" | "Lo" => {
            vec![one(COLLAPSED_LETTER), r(b'A', b'Z'), r(b'a', b'z')]
        }
        "P" => vec![
            one(COLLAPSED_PUNCTUATION),
            r(0x21, 0x23),
            r(0x25, 0x2A),
            r(0x2C, 0x2F),
            r(0x3A, 0x3B),
            r(0x3F, 0x40),
            r(0x5B, 0x5D),
            r(0x5F, 0x5F),
            r(0x7B, 0x7B),
            r(0x7D, 0x7D),
        ],
        "M" => vec![one(COLLAPSED_ACCENT_MARK)],
        "S" => vec![
            one(COLLAPSED_SYMBOL),
            r(0x24, 0x24),
            r(0x2B, 0x2B),
            r(0x3C, 0x3E),
            r(0x5E, 0x5E),
            r(0x60, 0x60),
            r(0x7C, 0x7C),
        ],
        _ => return None,
    })
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    mode: Mode,
}

enum Escape {
    Items(Vec<Item>),
    Char(u32),
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn bump(&mut self) -> Result<char, String> {
        let c = self.peek().ok_or_else(|| "unexpected end of pattern".to_string())?;
        self.pos += 1;
        Ok(c)
    }

    fn alt(&mut self) -> Result<Node, String> {
        let mut alts = vec![self.concat()?];
        while self.eat('|') {
            alts.push(self.concat()?);
        }
        Ok(if alts.len() == 1 { alts.remove(0) } else { Node::Alt(alts) })
    }

    fn concat(&mut self) -> Result<Node, String> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            items.push(self.repeat()?);
        }
        Ok(Node::Concat(items))
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect::<String>().parse().ok()
    }

    /// `{n}`, `{n,}` or `{n,m}` after the `{`; restores the position if it is not a quantifier.
    fn braces(&mut self) -> Option<(u32, Option<u32>)> {
        let save = self.pos;
        self.pos += 1;
        let parsed = (|| {
            let min = self.number()?;
            if self.eat('}') {
                return Some((min, Some(min)));
            }
            if !self.eat(',') {
                return None;
            }
            if self.eat('}') {
                return Some((min, None));
            }
            let max = self.number()?;
            self.eat('}').then_some((min, Some(max)))
        })();
        if parsed.is_none() {
            self.pos = save;
        }
        parsed
    }

    fn repeat(&mut self) -> Result<Node, String> {
        let mut node = self.atom()?;
        loop {
            let (min, max) = match self.peek() {
                Some('*') => {
                    self.pos += 1;
                    (0, None)
                }
                Some('+') => {
                    self.pos += 1;
                    (1, None)
                }
                Some('?') => {
                    self.pos += 1;
                    (0, Some(1))
                }
                Some('{') => match self.braces() {
                    Some(q) => q,
                    None => break,
                },
                _ => break,
            };
            let greedy = !self.eat('?');
            node = Node::Repeat { node: Box::new(node), min, max, greedy };
        }
        Ok(node)
    }

    fn atom(&mut self) -> Result<Node, String> {
        let c = self.bump()?;
        Ok(match c {
            '(' => {
                let mut look = None;
                if self.eat('?') {
                    match self.bump()? {
                        ':' => {}
                        '=' => look = Some(false),
                        '!' => look = Some(true),
                        other => return Err(format!("unsupported group (?{other}")),
                    }
                }
                let inner = self.alt()?;
                if !self.eat(')') {
                    return Err("missing ')'".into());
                }
                match look {
                    Some(negate) => Node::Look { node: Box::new(inner), negate },
                    None => inner,
                }
            }
            '[' => self.bracket()?,
            '\\' => match self.escape()? {
                Escape::Items(items) => Node::Class(Class::new(false, items)),
                Escape::Char(c) => Node::Class(Class::new(false, vec![Item::Range(c, c)])),
            },
            // ECMAScript '.': anything but line terminators.
            '.' => Node::Class(Class::new(
                true,
                vec![Item::Range(0x0A, 0x0A), Item::Range(0x0D, 0x0D), Item::Range(0x2028, 0x2029)],
            )),
            '^' => Node::Start,
            '$' => Node::End,
            c => Node::Class(Class::new(false, vec![Item::Range(u32::from(c), u32::from(c))])),
        })
    }

    fn escape(&mut self) -> Result<Escape, String> {
        let c = self.bump()?;
        Ok(match c {
            's' => Escape::Items(vec![Item::Space(true)]),
            'S' => Escape::Items(vec![Item::Space(false)]),
            'd' => Escape::Items(vec![Item::Digit(true)]),
            'D' => Escape::Items(vec![Item::Digit(false)]),
            'w' => Escape::Items(vec![Item::Word(true)]),
            'W' => Escape::Items(vec![Item::Word(false)]),
            'r' => Escape::Char(0x0D),
            'n' => Escape::Char(0x0A),
            't' => Escape::Char(0x09),
            'f' => Escape::Char(0x0C),
            'v' => Escape::Char(0x0B),
            'p' => {
                if self.mode != Mode::Collapsed {
                    return Err("\\p{..} outside collapsed mode".into());
                }
                if !self.eat('{') {
                    return Err("expected '{' after \\p".into());
                }
                let mut name = String::new();
                loop {
                    match self.bump()? {
                        '}' => break,
                        ch => name.push(ch),
                    }
                }
                Escape::Items(
                    category_items(&name).ok_or_else(|| format!("unknown \\p{{{name}}}"))?,
                )
            }
            c if c.is_ascii_alphanumeric() => return Err(format!("unsupported escape \\{c}")),
            c => Escape::Char(u32::from(c)),
        })
    }

    fn bracket(&mut self) -> Result<Node, String> {
        let negated = self.eat('^');
        let mut items = Vec::new();
        loop {
            let c = self.bump()?;
            if c == ']' {
                break;
            }
            let lo = if c == '\\' {
                match self.escape()? {
                    Escape::Items(mut v) => {
                        items.append(&mut v);
                        continue;
                    }
                    Escape::Char(x) => x,
                }
            } else {
                u32::from(c)
            };
            // A range `a-b` unless the '-' is last in the class.
            if self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|&n| n != ']') {
                self.pos += 1;
                let hc = self.bump()?;
                let hi = if hc == '\\' {
                    match self.escape()? {
                        Escape::Char(x) => x,
                        Escape::Items(_) => return Err("class escape as range end".into()),
                    }
                } else {
                    u32::from(hc)
                };
                items.push(Item::Range(lo, hi));
            } else {
                items.push(Item::Range(lo, lo));
            }
        }
        Ok(Node::Class(Class::new(negated, items)))
    }
}

#[derive(Debug, Clone, Copy)]
enum Inst {
    /// Consume one symbol of the class.
    Char(usize),
    /// Consume between `min` and `max` symbols of the class (greedy when `greedy`).
    Run {
        class: usize,
        min: u32,
        max: u32,
        greedy: bool,
    },
    /// Try `.0` first; on failure resume at `.1`.
    Split(usize, usize),
    Jmp(usize),
    /// Run the body at `body` as an atomic lookahead, then continue at `next`.
    Look {
        negate: bool,
        body: usize,
        next: usize,
    },
    Start,
    End,
    Match,
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Regex {
    insts: Vec<Inst>,
    classes: Vec<Class>,
}

struct Compiler {
    insts: Vec<Inst>,
    classes: Vec<Class>,
}

impl Compiler {
    fn push(&mut self, inst: Inst) -> usize {
        self.insts.push(inst);
        self.insts.len() - 1
    }

    fn class(&mut self, c: &Class) -> usize {
        self.classes.push(c.clone());
        self.classes.len() - 1
    }

    fn patch_split(&mut self, at: usize, first: usize, second: usize) {
        self.insts[at] = Inst::Split(first, second);
    }

    fn emit(&mut self, node: &Node) -> Result<(), String> {
        match node {
            Node::Class(c) => {
                let k = self.class(c);
                self.push(Inst::Char(k));
            }
            Node::Concat(v) => v.iter().try_for_each(|n| self.emit(n))?,
            Node::Alt(v) => {
                let mut jumps = Vec::new();
                for (i, alt) in v.iter().enumerate() {
                    if i + 1 == v.len() {
                        self.emit(alt)?;
                    } else {
                        let split = self.push(Inst::Split(0, 0));
                        self.emit(alt)?;
                        jumps.push(self.push(Inst::Jmp(0)));
                        let next = self.insts.len();
                        self.patch_split(split, split + 1, next);
                    }
                }
                let end = self.insts.len();
                for j in jumps {
                    self.insts[j] = Inst::Jmp(end);
                }
            }
            Node::Repeat { node, min, max, greedy } => {
                self.emit_repeat(node, *min, *max, *greedy)?
            }
            Node::Look { node, negate } => {
                let at = self.push(Inst::Match);
                let body = self.insts.len();
                self.emit(node)?;
                self.push(Inst::Match);
                self.insts[at] = Inst::Look { negate: *negate, body, next: self.insts.len() };
            }
            Node::Start => {
                self.push(Inst::Start);
            }
            Node::End => {
                self.push(Inst::End);
            }
        }
        Ok(())
    }

    fn emit_repeat(
        &mut self,
        node: &Node,
        min: u32,
        max: Option<u32>,
        greedy: bool,
    ) -> Result<(), String> {
        if let Node::Class(c) = node {
            let class = self.class(c);
            self.push(Inst::Run { class, min, max: max.unwrap_or(u32::MAX), greedy });
            return Ok(());
        }
        if max.is_some_and(|m| m < min) || min > 1024 || max.is_some_and(|m| m > 1024) {
            return Err("bad repetition bounds".into());
        }
        for _ in 0..min {
            self.emit(node)?;
        }
        let order = |body: usize, exit: usize| if greedy { (body, exit) } else { (exit, body) };
        match max {
            None => {
                if node.nullable() {
                    return Err("unbounded repetition of a pattern that can match empty".into());
                }
                let split = self.push(Inst::Split(0, 0));
                self.emit(node)?;
                self.push(Inst::Jmp(split));
                let exit = self.insts.len();
                let (a, b) = order(split + 1, exit);
                self.patch_split(split, a, b);
            }
            Some(max) => {
                let mut splits = Vec::new();
                for _ in min..max {
                    splits.push(self.push(Inst::Split(0, 0)));
                    self.emit(node)?;
                }
                let exit = self.insts.len();
                for s in splits {
                    let (a, b) = order(s + 1, exit);
                    self.patch_split(s, a, b);
                }
            }
        }
        Ok(())
    }
}

enum Frame {
    Alt {
        pc: usize,
        pos: usize,
    },
    /// Greedy run: positions `min_pos..pos` are still to be tried (from the top).
    RunDown {
        pc: usize,
        min_pos: usize,
        pos: usize,
    },
    /// Lazy run: positions `pos..=max_pos` are still to be tried (from the bottom).
    RunUp {
        pc: usize,
        max_pos: usize,
        pos: usize,
    },
}

impl Regex {
    /// Compile `pattern`; `mode` says how the input symbols were prepared.
    pub fn new(pattern: &str, mode: Mode) -> Result<Regex, String> {
        let mut parser = Parser { chars: pattern.chars().collect(), pos: 0, mode };
        let node = parser.alt()?;
        if parser.pos != parser.chars.len() {
            return Err(format!("unexpected '{}'", parser.chars[parser.pos]));
        }
        let mut c = Compiler { insts: Vec::new(), classes: Vec::new() };
        c.emit(&node)?;
        c.push(Inst::Match);
        Ok(Regex { insts: c.insts, classes: c.classes })
    }

    /// The end of the highest-priority match starting exactly at `start` within `sym[lo..hi]`.
    fn match_at(
        &self,
        pc0: usize,
        sym: &[u32],
        lo: usize,
        hi: usize,
        start: usize,
    ) -> Option<usize> {
        let mut stack: Vec<Frame> = Vec::new();
        let (mut pc, mut pos) = (pc0, start);
        loop {
            let ok = match self.insts.get(pc) {
                None => false,
                Some(&Inst::Match) => return Some(pos),
                Some(&Inst::Char(k)) => {
                    let hit = pos < hi && self.classes[k].matches(sym[pos]);
                    if hit {
                        pos += 1;
                        pc += 1;
                    }
                    hit
                }
                Some(&Inst::Run { class, min, max, greedy }) => {
                    let cls = &self.classes[class];
                    let limit = hi.min(pos.saturating_add(max as usize));
                    let mut end = pos;
                    while end < limit && cls.matches(sym[end]) {
                        end += 1;
                    }
                    let min_pos = pos + min as usize;
                    if end < min_pos {
                        false
                    } else if greedy {
                        if end > min_pos {
                            stack.push(Frame::RunDown { pc: pc + 1, min_pos, pos: end });
                        }
                        pos = end;
                        pc += 1;
                        true
                    } else {
                        if end > min_pos {
                            stack.push(Frame::RunUp { pc: pc + 1, max_pos: end, pos: min_pos });
                        }
                        pos = min_pos;
                        pc += 1;
                        true
                    }
                }
                Some(&Inst::Split(a, b)) => {
                    stack.push(Frame::Alt { pc: b, pos });
                    pc = a;
                    true
                }
                Some(&Inst::Jmp(a)) => {
                    pc = a;
                    true
                }
                Some(&Inst::Look { negate, body, next }) => {
                    let found = self.match_at(body, sym, lo, hi, pos).is_some();
                    if found != negate {
                        pc = next;
                        true
                    } else {
                        false
                    }
                }
                Some(&Inst::Start) => {
                    pc += 1;
                    pos == lo
                }
                Some(&Inst::End) => {
                    pc += 1;
                    pos == hi
                }
            };
            if ok {
                continue;
            }
            // Backtrack.
            match stack.pop()? {
                Frame::Alt { pc: p, pos: q } => {
                    pc = p;
                    pos = q;
                }
                Frame::RunDown { pc: p, min_pos, pos: q } => {
                    let q = q - 1;
                    if q > min_pos {
                        stack.push(Frame::RunDown { pc: p, min_pos, pos: q });
                    }
                    pc = p;
                    pos = q;
                }
                Frame::RunUp { pc: p, max_pos, pos: q } => {
                    let q = q + 1;
                    if q < max_pos {
                        stack.push(Frame::RunUp { pc: p, max_pos, pos: q });
                    }
                    pc = p;
                    pos = q;
                }
            }
        }
    }

    /// Split `sym[lo..hi]` like `std::regex_iterator` does in `unicode_regex_split_stl`: every
    /// match is a piece and so is every non-empty gap between matches. Appends piece lengths.
    pub fn split(&self, sym: &[u32], lo: usize, hi: usize, out: &mut Vec<usize>) {
        let mut prev = lo;
        let mut start = lo;
        while start < hi {
            match self.match_at(0, sym, lo, hi, start) {
                Some(end) if end > start => {
                    if start > prev {
                        out.push(start - prev);
                    }
                    out.push(end - start);
                    prev = end;
                    start = end;
                }
                _ => start += 1,
            }
        }
        if hi > prev {
            out.push(hi - prev);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pieces(pattern: &str, text: &str) -> Vec<String> {
        let re = Regex::new(pattern, Mode::Wide).unwrap();
        let sym: Vec<u32> = text.chars().map(u32::from).collect();
        let mut lens = Vec::new();
        re.split(&sym, 0, sym.len(), &mut lens);
        let mut at = 0;
        lens.iter()
            .map(|&n| {
                let s: String = text.chars().skip(at).take(n).collect();
                at += n;
                s
            })
            .collect()
    }

    #[test]
    fn alternation_priority_not_longest() {
        // ECMAScript takes the first alternative that matches, not the longest.
        assert_eq!(pieces("a|ab", "ab"), ["a", "b"]);
        assert_eq!(pieces("ab|a", "ab"), ["ab"]);
    }

    #[test]
    fn negative_lookahead_backtracks_the_run() {
        assert_eq!(pieces(r"\s+(?!\S)|\s+", "a   b"), ["a", "  ", " ", "b"]);
        assert_eq!(pieces(r"\s+(?!\S)|\s+", "a   "), ["a", "   "]);
    }

    #[test]
    fn counted_and_grouped_repetition() {
        assert_eq!(pieces("[0-9]{1,3}", "1234567"), ["123", "456", "7"]);
        assert_eq!(pieces("(?:ab)+c", "xababcab"), ["x", "ababc", "ab"]);
        assert_eq!(pieces(r"\s+$", "a  b  "), ["a  b", "  "]);
    }

    #[test]
    fn classes_and_escapes() {
        assert_eq!(pieces(r"[^\s,]+", "a,b c"), ["a", ",", "b", " ", "c"]);
        assert_eq!(pieces(r"[\-\]]+", "a-]b"), ["a", "-]", "b"]);
        assert!(Regex::new(r"\p{L}", Mode::Wide).is_err());
        assert!(Regex::new(r"(?:a*)*", Mode::Wide).is_err());
    }
}
