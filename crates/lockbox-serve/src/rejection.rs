//! Every answer other than a value, as one type that renders itself (axum's error-handling
//! example's shape): the status and the body the AWS agent sends for it.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};

use crate::upstream::UpstreamError;

/// The body of every answer.
pub(crate) type Body = Full<Bytes>;

/// Why a request gets no value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// More connections than the request may use (`max_conn`, or for a request without a
    /// valid token `max_conn - token_reserved_conn`): 429, and the connection is closed.
    ConnectionLimit,
    /// More header lines than `max_headers`: 431, as hyper answers past its own cap.
    TooManyHeaders,
    /// More than `max_pipelined_requests` requests sent ahead of their answers: 429, and the
    /// connection is closed.
    Pipelined,
    /// An `X-Forwarded-For` header: 400 (the agent refuses proxied requests).
    Forwarded,
    /// No valid SSRF token (or consumer token): 403.
    BadToken,
    /// Not a GET: 405.
    MethodNotAllowed,
    /// A query the agent's rules refuse: 400 with the rule broken.
    BadQuery(String),
    /// No such route: 404.
    NotFound,
    /// The caller may not read the id (the id as asked, the only thing the answer names):
    /// 403 `AccessDeniedException`, the same words whatever the reason.
    Denied(String),
    /// What AWS (or the way to it, or the offline store) answered instead of a value.
    Upstream(UpstreamError),
}

impl Rejection {
    /// The HTTP status.
    pub(crate) fn status(&self) -> u16 {
        match self {
            Self::ConnectionLimit | Self::Pipelined => 429,
            Self::TooManyHeaders => 431,
            Self::Forwarded | Self::BadQuery(_) => 400,
            Self::BadToken | Self::Denied(_) => 403,
            Self::MethodNotAllowed => 405,
            Self::NotFound => 404,
            Self::Upstream(up) => up.status,
        }
    }

    /// The body, as the agent words it.
    fn body(self) -> Bytes {
        match self {
            Self::ConnectionLimit => Bytes::from_static(b"Connection limit exceeded"),
            Self::TooManyHeaders => Bytes::from_static(b"Too many headers"),
            Self::Pipelined => Bytes::from_static(b"Too many pipelined requests"),
            Self::Forwarded => Bytes::from_static(b"Forwarded"),
            Self::BadToken => Bytes::from_static(b"Bad Token"),
            Self::MethodNotAllowed => Bytes::from_static(b"Not allowed"),
            Self::NotFound => Bytes::from_static(b"Not found"),
            Self::BadQuery(message) => Bytes::from(message),
            Self::Denied(asked) => Bytes::from(
                UpstreamError {
                    status: 403,
                    code: "AccessDeniedException".into(),
                    message: denial_message(&asked),
                }
                .body(),
            ),
            Self::Upstream(up) => Bytes::from(up.body()),
        }
    }

    /// Whether the connection is closed after this answer (it freed no slot otherwise).
    pub(crate) fn closes(&self) -> bool {
        matches!(self, Self::ConnectionLimit | Self::Pipelined)
    }

    /// The response.
    pub(crate) fn into_response(self) -> Response<Body> {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = Response::new(Full::new(self.body()));
        *r.status_mut() = status;
        r
    }
}

/// The one denial message: the id as asked, nothing about why (whether it is in the store,
/// which resource or ARN it is, whose it is).
pub(crate) fn denial_message(asked: &str) -> String {
    format!("Not authorized to read {asked}")
}

impl From<UpstreamError> for Rejection {
    fn from(up: UpstreamError) -> Self {
        Self::Upstream(up)
    }
}
