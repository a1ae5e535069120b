#![doc = include_str!("../README.md")]

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextResolve, NextValidation, ResolveInfo,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, Schema, ServerError, ServerResult, ValidationResult, Variables};
use ioto_domain::ErrorCode;
use ioto_resolvers::rate_limit::{Decision, RateLimiter};
use ioto_resolvers::{MutationRoot, QueryRoot, Services, SubscriptionRoot};

pub type IotoSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Limits applied to every operation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub introspection: bool,
    /// Root fields of one operation resolved at once (the others wait their turn).
    pub max_concurrent_root_fields: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_complexity: 20_000,
            introspection: true,
            max_concurrent_root_fields: 4,
        }
    }
}

pub fn build(services: Services, limits: Limits) -> IotoSchema {
    let limiter = Arc::clone(&services.rate_limiter);
    let mut b = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .data(services)
    // Outermost: charges an operation's cost once it has passed validation and the limits.
    .extension(RateLimit {
        limiter,
        root_fields: limits.max_concurrent_root_fields.max(1),
    })
    // Depth and cost are enforced by `ErrorCodes` from the validation result, so the refusal
    // can say what the operation costs and what the limit is.
    .extension(ErrorCodes { limits });
    if !limits.introspection {
        b = b.disable_introspection();
    }
    b.finish()
}

/// Charges every operation's complexity to the caller's and the tenant's rate-limit buckets
/// before it runs; refuses it with `RATE_LIMITED` (`retryAfter` in seconds, `limit` naming the
/// bucket) when either is short, and reports the tighter bucket in `RateLimit-Limit`,
/// `RateLimit-Remaining` and `RateLimit-Reset` headers. Resolves at most `root_fields` root
/// fields of an operation at once (aliases of one field each count), and answers, when the
/// request asks with `"extensions": {"cost": true}`, what it cost and how many store queries it
/// ran in the response's `extensions.cost`.
struct RateLimit {
    limiter: Arc<RateLimiter>,
    root_fields: usize,
}

impl ExtensionFactory for RateLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RateLimitExtension {
            limiter: Arc::clone(&self.limiter),
            decision: std::sync::Mutex::new(None),
            root_fields: tokio::sync::Semaphore::new(self.root_fields),
            cost_asked: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

struct RateLimitExtension {
    limiter: Arc<RateLimiter>,
    decision: std::sync::Mutex<Option<Decision>>,
    /// Root fields of this request resolving now.
    root_fields: tokio::sync::Semaphore,
    /// The request asked for `extensions.cost`.
    cost_asked: std::sync::atomic::AtomicBool,
}

/// The `RateLimit-*` headers of a decision (draft-ietf-httpapi-ratelimit-headers).
pub fn rate_limit_headers(d: &Decision) -> [(&'static str, String); 3] {
    [
        ("ratelimit-limit", d.limit.to_string()),
        ("ratelimit-remaining", d.remaining.to_string()),
        ("ratelimit-reset", d.reset.to_string()),
    ]
}

fn rate_limited(d: &Decision) -> ServerError {
    let wait = d.retry_after.as_secs_f64();
    let mut e = ServerError::new(
        format!(
            "rate limit of the {} reached: try again in {:.1} s (the operation's cost counts against a budget refilled every second; ask for smaller pages or fewer fields, or send lists where the API takes them)",
            match d.scope {
                "tenant" => "tenant (all its users together)",
                "address" => "client address",
                _ => "caller",
            },
            wait
        ),
        None,
    );
    let ext = e.extensions.get_or_insert_with(Default::default);
    ext.set("code", ErrorCode::RateLimited.as_str());
    ext.set("retryAfter", (wait * 1000.0).ceil() / 1000.0);
    ext.set("limit", d.scope);
    for (k, v) in rate_limit_headers(d) {
        ext.set(k, v);
    }
    e
}

#[async_trait::async_trait]
impl Extension for RateLimitExtension {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let request = ctx.data_opt::<ioto_resolvers::RequestContext>();
        if let Some(r) = request {
            r.meter
                .cost
                .store(result.complexity as u64, std::sync::atomic::Ordering::Relaxed);
        }
        let decision = self.limiter.charge(
            request.and_then(|r| r.actor.as_ref()),
            request.and_then(|r| r.client),
            result.complexity as u64,
            std::time::Instant::now(),
        );
        let Some(d) = decision else { return Ok(result) };
        let allowed = d.allowed;
        let refusal = (!allowed).then(|| rate_limited(&d));
        *self
            .decision
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(d);
        match refusal {
            Some(e) => Err(vec![e]),
            None => Ok(result),
        }
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        let asked = matches!(
            request.extensions.get("cost"),
            Some(async_graphql::Value::Boolean(true))
        );
        self.cost_asked.store(asked, std::sync::atomic::Ordering::Relaxed);
        next.run(ctx, request).await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<async_graphql::Value>> {
        if info.path_node.parent.is_some() {
            return next.run(ctx, info).await;
        }
        // The semaphore lives as long as the request: it is never closed.
        let _turn = self.root_fields.acquire().await;
        next.run(ctx, info).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut resp = next.run(ctx, operation_name).await;
        if self.cost_asked.load(std::sync::atomic::Ordering::Relaxed) {
            if let Some(r) = ctx.data_opt::<ioto_resolvers::RequestContext>() {
                let mut cost = async_graphql::indexmap::IndexMap::new();
                cost.insert(
                    async_graphql::Name::new("complexity"),
                    async_graphql::Value::from(r.meter.cost()),
                );
                cost.insert(
                    async_graphql::Name::new("storeQueries"),
                    async_graphql::Value::from(r.meter.store_queries()),
                );
                resp.extensions
                    .insert("cost".into(), async_graphql::Value::Object(cost));
            }
        }
        let decision = self
            .decision
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(d) = decision {
            for (k, v) in rate_limit_headers(&d) {
                if let Ok(v) = v.parse() {
                    resp.http_headers.insert(k, v);
                }
            }
        }
        let warnings = ctx
            .data_opt::<ioto_resolvers::RequestContext>()
            .map(ioto_resolvers::RequestContext::take_warnings)
            .unwrap_or_default();
        if !warnings.is_empty() {
            resp.extensions.insert(
                "warnings".into(),
                async_graphql::Value::List(warnings.into_iter().map(async_graphql::Value::String).collect()),
            );
        }
        resp
    }
}

/// The SDL of the schema (no data needed).
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .finish()
    .sdl()
}

/// Gives every error a code. Errors of the request itself (syntax, validation, limits, argument
/// coercion) become `BAD_USER_INPUT`, naming the argument where async-graphql's message does;
/// resolver errors already carry their own. An execution error without a code is a bug in the
/// server (a resolver that forgot the domain's error table): it becomes `INTERNAL`, is logged in
/// full with the request id and answered without details.
struct ErrorCodes {
    limits: Limits,
}

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension { limits: self.limits })
    }
}

struct ErrorCodesExtension {
    limits: Limits,
}

/// An operation over a limit, refused before anything runs with what it costs and what the
/// limit is (async-graphql's own answer only says "too complex").
fn over_limit(result: &ValidationResult, limits: &Limits) -> Option<ServerError> {
    let (limit, message) = if result.depth > limits.max_depth {
        (
            "depth",
            format!(
                "the query is nested too deep: {} levels, the limit is {} (graphql.max_depth)",
                result.depth, limits.max_depth
            ),
        )
    } else if result.complexity > limits.max_complexity {
        (
            "complexity",
            format!(
                "the query is too complex: it costs {} (a list multiplies the cost of its items by its \
                 page size, a field that asks a store per item adds 10), the limit is {} \
                 (graphql.max_complexity); ask for smaller pages or fewer nested lists",
                result.complexity, limits.max_complexity
            ),
        )
    } else {
        return None;
    };
    let mut e = ServerError::new(message, None);
    let ext = e.extensions.get_or_insert_with(Default::default);
    ext.set("code", ErrorCode::BadUserInput.as_str());
    ext.set("limit", limit);
    Some(e)
}

fn has_code(e: &ServerError) -> bool {
    e.extensions.as_ref().is_some_and(|x| x.get("code").is_some())
}

/// `Invalid value for argument "input.iccid", expected type "Iccid"` names `input.iccid`.
fn argument_of(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("Invalid value for argument \"")?;
    rest.split('"').next().filter(|a| !a.is_empty())
}

/// `… expected type "Iccid"` names `Iccid`.
fn expected_type(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("expected type \"")?;
    rest.split('"').next()
}

fn bad_user_input(mut e: ServerError) -> ServerError {
    if !has_code(&e) {
        let field = argument_of(&e.message).map(str::to_owned);
        if let Some(rule) = expected_type(&e.message).and_then(ioto_resolvers::scalars::scalar_rule) {
            e.message = format!("{}: {rule}", e.message);
        }
        let ext = e.extensions.get_or_insert_with(Default::default);
        ext.set("code", ErrorCode::BadUserInput.as_str());
        if let Some(f) = field {
            ext.set("field", f);
        }
    }
    e
}

/// async-graphql's own wording for an argument or variable that its type refuses while the
/// operation runs (scalars parse then, e.g. a `DateTime` that is not RFC 3339).
fn is_input_error(message: &str) -> bool {
    message.starts_with("Failed to parse \"")
        || message.starts_with("Expected input type \"")
        || message.starts_with("Invalid value for argument \"")
}

fn internal(mut e: ServerError, request_id: &str) -> ServerError {
    if has_code(&e) {
        return e;
    }
    if is_input_error(&e.message) {
        return bad_user_input(e);
    }
    tracing::error!(request_id, path = ?e.path, detail = %e.message, "error without a code (a server bug)");
    e.message = ioto_domain::error::INTERNAL_MESSAGE.to_owned();
    e.source = None;
    e.extensions
        .get_or_insert_with(Default::default)
        .set("code", ErrorCode::Internal.as_str());
    e
}

#[async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(bad_user_input)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next
            .run(ctx)
            .await
            .map_err(|errs| errs.into_iter().map(bad_user_input).collect::<Vec<_>>())?;
        match over_limit(&result, &self.limits) {
            Some(e) => Err(vec![e]),
            None => Ok(result),
        }
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut resp = next.run(ctx, operation_name).await;
        let request_id = ctx
            .data_opt::<ioto_resolvers::RequestContext>()
            .map_or("-", |r| r.request_id.as_str());
        resp.errors = std::mem::take(&mut resp.errors)
            .into_iter()
            .map(|e| internal(e, request_id))
            .collect();
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{
        EmptyMutation, EmptySubscription, InputValueResult, Object, Scalar, ScalarType, Value,
    };

    /// Parses only while the operation runs (no validation-time check), like `DateTime`.
    struct Late(i32);

    #[Scalar]
    impl ScalarType for Late {
        fn parse(value: Value) -> InputValueResult<Self> {
            Err(async_graphql::InputValueError::custom(format!(
                "{value} is not late"
            )))
        }
        fn to_value(&self) -> Value {
            Value::Number(self.0.into())
        }
    }

    struct Buggy;

    #[Object]
    impl Buggy {
        /// A resolver that forgot the error table.
        async fn broken(&self) -> async_graphql::Result<i32> {
            Err("connection reset by 10.0.0.7:5432 (db ioto_prod)".into())
        }
        async fn late(&self, _at: Late) -> bool {
            true
        }
    }

    fn buggy_schema() -> Schema<Buggy, EmptyMutation, EmptySubscription> {
        Schema::build(Buggy, EmptyMutation, EmptySubscription)
            .extension(ErrorCodes {
                limits: Limits::default(),
            })
            .finish()
    }

    fn code(resp: &Response) -> Option<String> {
        let v = resp.errors.first()?.extensions.as_ref()?.get("code")?.clone();
        match v {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    #[tokio::test]
    async fn an_error_without_a_code_is_internal_and_answered_without_details() {
        let resp = buggy_schema().execute("{ broken }").await;
        assert_eq!(code(&resp).as_deref(), Some("INTERNAL"));
        assert_eq!(resp.errors[0].message, ioto_domain::error::INTERNAL_MESSAGE);
        let text = serde_json::to_string(&resp).unwrap_or_default();
        assert!(
            !text.contains("10.0.0.7") && !text.contains("ioto_prod"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn arguments_refused_while_running_are_bad_user_input() {
        let resp = buggy_schema().execute(r#"{ late(at: "soon") }"#).await;
        assert_eq!(
            code(&resp).as_deref(),
            Some("BAD_USER_INPUT"),
            "{:?}",
            resp.errors
        );
        assert!(resp.errors[0].message.contains("is not late"));
    }

    #[test]
    fn argument_errors_name_the_argument() {
        assert_eq!(
            argument_of(r#"Invalid value for argument "input.iccid", expected type "Iccid""#),
            Some("input.iccid")
        );
        assert_eq!(argument_of("Unknown field \"x\""), None);
        assert_eq!(
            expected_type(r#"Invalid value for argument "iccid", expected type "Iccid""#),
            Some("Iccid")
        );
        assert!(is_input_error(
            r#"Failed to parse "DateTime": input contains invalid characters"#
        ));
        assert!(!is_input_error("no request context"));
    }

    /// The committed `schema.graphql` is the API contract; a change to it must be deliberate.
    #[test]
    fn committed_sdl_matches_the_schema() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
        let generated = sdl();
        if std::env::var_os("IOTO_UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "schema/schema.graphql is out of date; run `IOTO_UPDATE_SCHEMA=1 cargo test -p ioto-schema` and commit it"
        );
    }
}
