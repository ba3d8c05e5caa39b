//! API errors: `{"error": {"code": "...", "message": "..."}}` with a stable code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use salvage_domain::order::OrderError;
use salvage_domain::subscription::SubscriptionError;

use crate::engine::EngineError;
use crate::store::{ExecuteError, StoreError};

/// The error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A stable code and a message a person understands.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// `invalid_request`, `unauthorized`, `not_found`, `conflict`, `hard_decline`,
    /// `rerun_on_gateway_profile`, `not_flexfactor_gateway`, `not_declined`, `salvage_pending`,
    /// `payload_too_large`, `unavailable`, `internal`...
    pub code: String,
    pub message: String,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: self.code,
                    message: self.message,
                },
            }),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        ApiError::unavailable("the store is not available; try again")
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        tracing::error!(error = %e, "engine error");
        ApiError::unavailable("the service could not finish the work; try again")
    }
}

impl From<ExecuteError<OrderError>> for ApiError {
    fn from(e: ExecuteError<OrderError>) -> Self {
        from_execute(e, OrderError::code)
    }
}

impl From<ExecuteError<SubscriptionError>> for ApiError {
    fn from(e: ExecuteError<SubscriptionError>) -> Self {
        from_execute(e, SubscriptionError::code)
    }
}

/// A command's failure as an answer: a refusal under the aggregate error's stable `code`.
fn from_execute<E: std::error::Error>(
    e: ExecuteError<E>,
    code: impl Fn(&E) -> &'static str,
) -> ApiError {
    match e {
        ExecuteError::Refused(e) => {
            let code = code(&e);
            let status = match code {
                "not_found" => StatusCode::NOT_FOUND,
                "conflict" => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            ApiError::new(status, code, e.to_string())
        }
        ExecuteError::Conflict(_) | ExecuteError::Guard(_) => ApiError::conflict(e.to_string()),
        ExecuteError::Store(s) => {
            tracing::error!(error = %s, "store error");
            ApiError::unavailable("the store is not available; try again")
        }
    }
}

/// `Json` that answers malformed bodies with the API's error shape (W5 for webhooks, 400 here).
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::JsonRejection;
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::BytesRejection(e)) => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the request body could not be read: {e}"),
            )),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                "send the body as JSON with Content-Type: application/json",
            )),
            Err(e) => Err(ApiError::invalid(format!(
                "the JSON body is not valid: {}",
                e.body_text()
            ))),
        }
    }
}
