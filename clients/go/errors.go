package realm

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error codes of realm-server (native-server/PROTOCOL.md, "Errors"), and this client's own.
const (
	CodeInvalidRequest        = "invalid_request"
	CodeContextLengthExceeded = "context_length_exceeded"
	CodeInvalidAPIKey         = "invalid_api_key"
	CodeModelNotAllowed       = "model_not_allowed"
	CodeModelNotFound         = "model_not_found"
	CodeNotFound              = "not_found"
	CodeMethodNotAllowed      = "method_not_allowed"
	CodePayloadTooLarge       = "payload_too_large"
	CodeRateLimitExceeded     = "rate_limit_exceeded"
	CodeServerOverloaded      = "server_overloaded"
	CodeShuttingDown          = "shutting_down"
	CodeCancelled             = "cancelled"
	CodeInternal              = "internal"
)

var statusByCode = map[string]int{
	CodeInvalidRequest: 400, CodeContextLengthExceeded: 400, CodeInvalidAPIKey: 401,
	CodeModelNotAllowed: 403, CodeModelNotFound: 404, CodeNotFound: 404, CodeMethodNotAllowed: 405,
	CodePayloadTooLarge: 413, CodeRateLimitExceeded: 429, CodeServerOverloaded: 503,
	CodeShuttingDown: 503, CodeCancelled: 499, CodeInternal: 500,
}

// APIError is an error the server answered: an HTTP error response, a failure event in an SSE
// stream, or a realm.v1 `error` message (where Status is the code's HTTP status, informative).
// Use errors.As, or the helpers IsAuth, IsRateLimit, ….
type APIError struct {
	Status     int           // HTTP status (401, 429, …)
	Code       string        // the server's code: invalid_api_key, rate_limit_exceeded, …
	Type       string        // OpenAI's error type, when the server sent one
	Param      string        // the request field at fault, if any
	Message    string        // for people
	RetryAfter time.Duration // from Retry-After or retry_after_s; 0 when not given
	RequestID  string        // X-Request-Id of the HTTP answer, if any
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "realm: %s (%d %s", e.Message, e.Status, e.Code)
	if e.Param != "" {
		fmt.Fprintf(&b, ", param=%s", e.Param)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %s", e.RetryAfter)
	}
	b.WriteString(")")
	return b.String()
}

// ConnectionError: the server could not be reached, or the connection broke (an SSE stream that
// ends before [DONE], a refused or reset connection, an unreadable answer).
type ConnectionError struct {
	Op  string // what was being done: "dial", "stream", …
	Err error
}

func (e *ConnectionError) Error() string {
	return "realm: connection error (" + e.Op + "): " + errString(e.Err)
}
func (e *ConnectionError) Unwrap() error { return e.Err }

// ProtocolError: the server's bytes or messages break HTTP/SSE or realm.v1 (garbage frames, a
// wrong protocol version, a binary frame).
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "realm: protocol error: " + e.Msg }

// ConnectionClosedError: the realm.v1 WebSocket closed. Every request in flight on it fails with
// this error, and so does every later request on that connection. Code is the close code:
// 1000 closed by this client, 1001 the server went away, 1006 the connection was lost (no close
// frame), 1009 message too big, 4001 slow consumer, 4002 idle, 4003 protocol error, 1002 this
// client found the server's messages unreadable (Err says why).
type ConnectionClosedError struct {
	Code   int
	Reason string
	Err    error
}

func (e *ConnectionClosedError) Error() string {
	s := fmt.Sprintf("realm: connection closed (%d", e.Code)
	if e.Reason != "" {
		s += " " + e.Reason
	}
	s += ")"
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}
func (e *ConnectionClosedError) Unwrap() error { return e.Err }

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func apiCode(err error) (*APIError, bool) {
	var e *APIError
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

func hasCode(err error, codes ...string) bool {
	e, ok := apiCode(err)
	if !ok {
		return false
	}
	for _, c := range codes {
		if e.Code == c {
			return true
		}
	}
	return false
}

// IsAuth: a missing or unknown API key (401 invalid_api_key).
func IsAuth(err error) bool {
	e, ok := apiCode(err)
	return ok && (e.Code == CodeInvalidAPIKey || e.Status == http.StatusUnauthorized)
}

// IsRateLimit: a tenant's or the connection's limit (429 rate_limit_exceeded); see RetryAfter.
func IsRateLimit(err error) bool { return hasCode(err, CodeRateLimitExceeded) }

// IsOverloaded: the engine's queue is full, the model loads, or no connection slot (503).
func IsOverloaded(err error) bool { return hasCode(err, CodeServerOverloaded) }

// IsShuttingDown: the server drains (503 shutting_down).
func IsShuttingDown(err error) bool { return hasCode(err, CodeShuttingDown) }

// IsBadRequest: 400 invalid_request or context_length_exceeded (Param names the field), 405, 413.
func IsBadRequest(err error) bool {
	return hasCode(err, CodeInvalidRequest, CodeContextLengthExceeded, CodeMethodNotAllowed, CodePayloadTooLarge)
}

// IsContextLength: the prompt does not fit the context.
func IsContextLength(err error) bool { return hasCode(err, CodeContextLengthExceeded) }

// IsPermission: the tenant may not use the model (403 model_not_allowed).
func IsPermission(err error) bool { return hasCode(err, CodeModelNotAllowed) }

// IsNotFound: 404 model_not_found or not_found.
func IsNotFound(err error) bool { return hasCode(err, CodeModelNotFound, CodeNotFound) }

// IsInternal: 500 internal, or a code this client does not know.
func IsInternal(err error) bool { return hasCode(err, CodeInternal) }

// IsRetryable: the server refused before doing anything and said to retry later (429, 503).
func IsRetryable(err error) bool {
	return hasCode(err, CodeRateLimitExceeded, CodeServerOverloaded, CodeShuttingDown)
}

// IsConnection: the server is unreachable or the connection broke (ConnectionError,
// ConnectionClosedError, ProtocolError).
func IsConnection(err error) bool {
	var c *ConnectionError
	var cc *ConnectionClosedError
	var p *ProtocolError
	return errors.As(err, &c) || errors.As(err, &cc) || errors.As(err, &p)
}

// errorBody is OpenAI's error body.
type errorBody struct {
	Error *struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Code    *string `json:"code"`
		Param   *string `json:"param"`
	} `json:"error"`
}

func newAPIError(status int, code, typ, param, msg string, retryAfter time.Duration) *APIError {
	known := false
	if code != "" {
		_, known = statusByCode[code]
	}
	if !known { // an unknown code (or none): by status, else internal
		switch {
		case status == 401:
			code = CodeInvalidAPIKey
		case status == 429:
			code = CodeRateLimitExceeded
		case status == 403:
			code = CodeModelNotAllowed
		case status == 404:
			code = CodeNotFound
		case status == 413:
			code = CodePayloadTooLarge
		case status >= 400 && status < 500:
			code = CodeInvalidRequest
		default:
			code = CodeInternal
		}
	}
	if status == 0 {
		status = statusByCode[code]
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &APIError{Status: status, Code: code, Type: typ, Param: param, Message: msg, RetryAfter: retryAfter}
}

func parseRetryAfter(h string) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if f, err := strconv.ParseFloat(h, 64); err == nil && f > 0 {
		return time.Duration(f * float64(time.Second))
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}
