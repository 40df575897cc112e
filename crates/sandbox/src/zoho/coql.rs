//! COQL (`POST /crm/v8/coql`, zoho.com/crm/developer/docs/api/v8/COQL-Overview.html and
//! COQL-Limitations.html): `select <fields> from <module> [where …] [order by …] [limit n
//! [offset m]]`. Enforced as documented: `in` with at most 50 values, at most 25 criteria, more
//! than two criteria only grouped with brackets ("use them as (A and (B and C))"), no multi-line
//! field in a criterion, LIMIT at most 2000 (LIMIT 201–1000 costs 2 credits, 1001–2000 costs 3).
//! No match is 204 without a body. Values compare exactly (strict: the reference does not say
//! `=` ignores case or formatting).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};

use super::gate::error;
use super::{Inner, Record, Shared, lock};

pub(super) fn router() -> Router<Shared> {
    Router::new().route("/crm/v8/coql", post(coql))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(u64),
    Sym(char),
}

fn tokens(q: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some('\\') => s.push(chars.next().ok_or("unterminated string")?),
                    Some('\'') => break,
                    Some(c) => s.push(c),
                    None => return Err("unterminated string".into()),
                }
            }
            out.push(Tok::Str(s));
        } else if c.is_ascii_digit() {
            let mut n = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                n.push(d);
                chars.next();
            }
            out.push(Tok::Num(n.parse().map_err(|_| "number")?));
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let mut w = String::new();
            while let Some(&d) = chars
                .peek()
                .filter(|d| d.is_alphanumeric() || **d == '_' || **d == '.' || **d == '$')
            {
                w.push(d);
                chars.next();
            }
            out.push(Tok::Word(w));
        } else if "(),=*".contains(c) {
            out.push(Tok::Sym(c));
            chars.next();
        } else {
            return Err(format!("unexpected {c:?}"));
        }
    }
    Ok(out)
}

#[derive(Debug)]
enum Cond {
    In(String, Vec<String>, bool),
    Eq(String, String),
    Null(String, bool),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
    criteria: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }
    fn keyword(&mut self, k: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k)) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn expect_keyword(&mut self, k: &str) -> Result<(), String> {
        self.keyword(k).then_some(()).ok_or(format!("expected {k}"))
    }
    fn word(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Word(w)) => Ok(w),
            t => Err(format!("expected a name, found {t:?}")),
        }
    }
    fn sym(&mut self, c: char) -> Result<(), String> {
        match self.next() {
            Some(Tok::Sym(s)) if s == c => Ok(()),
            t => Err(format!("expected {c:?}, found {t:?}")),
        }
    }

    /// Two terms at most without brackets.
    fn cond(&mut self) -> Result<Cond, String> {
        let a = self.term()?;
        let and = if self.keyword("and") {
            true
        } else if self.keyword("or") {
            false
        } else {
            return Ok(a);
        };
        let b = self.term()?;
        if matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("and") || w.eq_ignore_ascii_case("or"))
        {
            return Err("more than two criteria must be grouped with brackets".into());
        }
        Ok(if and {
            Cond::And(Box::new(a), Box::new(b))
        } else {
            Cond::Or(Box::new(a), Box::new(b))
        })
    }

    fn term(&mut self) -> Result<Cond, String> {
        if self.peek() == Some(&Tok::Sym('(')) {
            self.at += 1;
            let c = self.cond()?;
            self.sym(')')?;
            return Ok(c);
        }
        self.criteria += 1;
        let field = self.word()?;
        if self.keyword("is") {
            let not = self.keyword("not");
            self.expect_keyword("null")?;
            return Ok(Cond::Null(field, !not));
        }
        let not = self.keyword("not");
        if self.keyword("in") {
            self.sym('(')?;
            let mut values = Vec::new();
            loop {
                match self.next() {
                    Some(Tok::Str(s)) => values.push(s),
                    Some(Tok::Num(n)) => values.push(n.to_string()),
                    t => return Err(format!("expected a value, found {t:?}")),
                }
                match self.next() {
                    Some(Tok::Sym(',')) => continue,
                    Some(Tok::Sym(')')) => break,
                    t => return Err(format!("expected , or ), found {t:?}")),
                }
            }
            if values.len() > 50 {
                return Err("in takes at most 50 values".into());
            }
            return Ok(Cond::In(field, values, !not));
        }
        if not {
            return Err("expected in after not".into());
        }
        self.sym('=')?;
        match self.next() {
            Some(Tok::Str(s)) => Ok(Cond::Eq(field, s)),
            Some(Tok::Num(n)) => Ok(Cond::Eq(field, n.to_string())),
            t => Err(format!("expected a value, found {t:?}")),
        }
    }
}

struct Query {
    fields: Vec<String>,
    module: String,
    cond: Option<Cond>,
    limit: usize,
    offset: usize,
}

fn parse(q: &str) -> Result<(Query, usize), String> {
    let mut p = Parser {
        toks: tokens(q)?,
        at: 0,
        criteria: 0,
    };
    p.expect_keyword("select")?;
    let mut fields = vec![p.word()?];
    while p.peek() == Some(&Tok::Sym(',')) {
        p.at += 1;
        fields.push(p.word()?);
    }
    p.expect_keyword("from")?;
    let module = p.word()?;
    let cond = if p.keyword("where") {
        Some(p.cond()?)
    } else {
        None
    };
    if p.keyword("order") {
        p.expect_keyword("by")?;
        p.word()?;
        let _ = p.keyword("asc") || p.keyword("desc");
    }
    let (mut limit, mut offset) = (200, 0);
    if p.keyword("limit") {
        limit = match p.next() {
            Some(Tok::Num(n)) => n as usize,
            t => return Err(format!("expected a number, found {t:?}")),
        };
        if p.keyword("offset") {
            offset = match p.next() {
                Some(Tok::Num(n)) => n as usize,
                t => return Err(format!("expected a number, found {t:?}")),
            };
        }
    }
    if let Some(t) = p.peek() {
        return Err(format!("unexpected {t:?}"));
    }
    let criteria = p.criteria;
    Ok((
        Query {
            fields,
            module,
            cond,
            limit,
            offset,
        },
        criteria,
    ))
}

/// A record's value of `field` as COQL compares it: a lookup by its id.
fn value_of(r: &Record, field: &str) -> Option<String> {
    let field = field.strip_suffix(".id").unwrap_or(field);
    if field == "id" {
        return Some(r.id.clone());
    }
    match r.values.get(field)? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_owned),
        v => Some(v.to_string()),
    }
}

fn matches(r: &Record, c: &Cond) -> bool {
    match c {
        Cond::In(f, values, yes) => value_of(r, f).is_some_and(|v| values.contains(&v)) == *yes,
        Cond::Eq(f, v) => value_of(r, f).as_ref() == Some(v),
        Cond::Null(f, yes) => value_of(r, f).is_none() == *yes,
        Cond::And(a, b) => matches(r, a) && matches(r, b),
        Cond::Or(a, b) => matches(r, a) || matches(r, b),
    }
}

/// Every field a condition names.
fn named(c: &Cond, out: &mut Vec<String>) {
    match c {
        Cond::In(f, ..) | Cond::Eq(f, _) | Cond::Null(f, _) => out.push(f.clone()),
        Cond::And(a, b) | Cond::Or(a, b) => {
            named(a, out);
            named(b, out);
        }
    }
}

fn check_fields(i: &Inner, q: &Query) -> Result<(), Box<Response>> {
    let Some(m) = i.modules.get(&q.module) else {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY",
            "invalid module given",
            json!({"module": q.module}),
        )));
    };
    let mut in_criteria = Vec::new();
    if let Some(c) = &q.cond {
        named(c, &mut in_criteria);
    }
    for f in q.fields.iter().chain(&in_criteria) {
        let base = f.strip_suffix(".id").unwrap_or(f);
        if base != "id" && m.field(base).is_none() {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "INVALID_QUERY",
                "invalid column given",
                json!({"column_name": f}),
            )));
        }
    }
    for f in &in_criteria {
        if m.field(f).is_some_and(|f| f.data_type == "textarea") {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "INVALID_QUERY",
                "multi-line fields are not supported in criteria",
                json!({"column_name": f}),
            )));
        }
    }
    Ok(())
}

async fn coql(State(s): State<Shared>, body: Bytes) -> Response {
    let query = serde_json::from_slice::<Value>(&body).ok().and_then(|b| {
        b.get("select_query")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let Some(query) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "MANDATORY_NOT_FOUND",
            "required field not found",
            json!({"api_name": "select_query"}),
        );
    };
    let syntax = |why: String| {
        error(
            StatusCode::BAD_REQUEST,
            "SYNTAX_ERROR",
            "error occured while parsing the query",
            json!({"reason": why}),
        )
    };
    let (q, criteria) = match parse(&query) {
        Ok(p) => p,
        Err(why) => return syntax(why),
    };
    if criteria > 25 {
        return syntax(format!("{criteria} criteria; at most 25"));
    }
    if !(1..=2000).contains(&q.limit) {
        return syntax(format!("limit {} is outside 1 ..= 2000", q.limit));
    }
    let mut i = lock(&s);
    i.counts.coql += 1;
    if let Err(r) = check_fields(&i, &q) {
        return *r;
    }
    // The admission took one credit; a larger LIMIT costs more.
    let extra = match q.limit {
        0..=200 => 0,
        201..=1000 => 1,
        _ => 2,
    };
    if extra > 0 {
        i.credits.push_back((std::time::Instant::now(), extra));
        i.counts.credits_used += extra;
    }
    let found: Vec<&Record> = i
        .records
        .values()
        .filter(|r| r.module == q.module && q.cond.as_ref().is_none_or(|c| matches(r, c)))
        .collect();
    let more = found.len() > q.offset + q.limit;
    let data: Vec<Value> = found
        .into_iter()
        .skip(q.offset)
        .take(q.limit)
        .map(|r| {
            let mut o = Map::new();
            o.insert("id".into(), json!(r.id));
            for f in &q.fields {
                let v = match f.as_str() {
                    "id" => json!(r.id),
                    "Modified_Time" => json!(r.modified),
                    f => r.values.get(f).cloned().unwrap_or(Value::Null),
                };
                o.insert(f.clone(), v);
            }
            Value::Object(o)
        })
        .collect();
    if data.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let count = data.len();
    axum::Json(json!({"data": data, "info": {"count": count, "more_records": more}}))
        .into_response()
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn brackets_group_more_than_two_criteria() {
        let ok = "select id, Phone from Contacts where ((Phone in ('+1', '1') or Mobile in ('+1')) or Phone = '2') limit 200";
        let (q, n) = parse(ok).unwrap();
        assert_eq!((q.module.as_str(), q.fields.len(), n), ("Contacts", 2, 3));
        assert!(
            parse("select id from Contacts where Phone = '1' or Mobile = '1' or Phone = '2'")
                .is_err()
        );
        let many = (0..51)
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(parse(&format!("select id from Contacts where Phone in ({many})")).is_err());
        assert!(parse("select id from Contacts where Name = 'O\\'Brien'").is_ok());
        assert!(parse("select id from Contacts where").is_err());
    }
}
