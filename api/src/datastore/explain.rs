//! Client errors as one line for people: the whole chain of causes, or a summary
//! with its innermost cause (the refused connection, the timeout, the certificate
//! problem) when the chain between says nothing more.

/// `error: cause: cause…`, skipping causes the text already holds.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// An etcd client error as its gRPC status message and innermost cause.
pub fn etcd_message(error: &etcd_client::Error) -> String {
    match error {
        etcd_client::Error::GRpcStatus(status) => with_cause(status.message().to_owned(), status),
        other => other.to_string(),
    }
}

/// `summary: cause` with `top`'s innermost cause, unless that adds nothing.
pub fn with_cause(summary: String, top: &dyn std::error::Error) -> String {
    let cause = innermost_cause(top);
    // gRPC statuses often carry their cause's text as their message.
    if std::ptr::addr_eq(cause, top) || cause.to_string() == summary {
        summary
    } else {
        format!("{summary}: {cause}")
    }
}

fn innermost_cause(error: &dyn std::error::Error) -> &dyn std::error::Error {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause
}
