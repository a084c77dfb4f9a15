package realm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// Stream reads a streamed answer's server-sent events, one chunk at a time:
//
//	for s.Next() { chunk := s.Current(); … }
//	if err := s.Err(); err != nil { … }
//	s.Close()
//
// Closing the stream (or cancelling the context it was opened with) closes the HTTP response,
// and the server cancels the request. A stream that ends before `data: [DONE]` fails with a
// *ConnectionError; a failure event from the server is an *APIError.
type Stream[T any] struct {
	resp    *http.Response
	rd      *bufio.Reader
	ctx     context.Context
	cancel  context.CancelFunc
	cur     T
	err     error
	done    bool
	closed  bool
	closeMu sync.Once
}

func openStream[T any](ctx context.Context, c *Client, path string, body any) (*Stream[T], error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	resp, err := c.send(ctx, http.MethodPost, path, b, c.maxRetries)
	if err != nil {
		cancel()
		return nil, err
	}
	return &Stream[T]{resp: resp, rd: bufio.NewReaderSize(resp.Body, 16<<10), ctx: ctx, cancel: cancel}, nil
}

// Next reads the next chunk; false at the end of the stream or on an error (see Err).
func (s *Stream[T]) Next() bool {
	if s.done || s.err != nil || s.closed {
		return false
	}
	var data bytes.Buffer
	hasData := false
	for {
		line, err := s.rd.ReadBytes('\n')
		if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
			s.fail(err)
			return false
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 { // end of an event
			if !hasData {
				continue
			}
			return s.event(data.Bytes())
		}
		if line[0] == ':' { // a comment (keep-alive)
			continue
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		if string(name) == "data" {
			if hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			hasData = true
		}
	}
}

func (s *Stream[T]) fail(err error) {
	if s.closed {
		return
	}
	if s.ctx.Err() != nil {
		s.err = s.ctx.Err()
	} else if errors.Is(err, io.EOF) {
		s.err = &ConnectionError{Op: "stream", Err: errors.New("the stream ended before [DONE]: the server went away")}
	} else {
		s.err = &ConnectionError{Op: "stream", Err: err}
	}
	s.Close()
}

func (s *Stream[T]) event(data []byte) bool {
	if string(data) == "[DONE]" {
		s.done = true
		s.Close()
		return false
	}
	var probe struct {
		Error *struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Code    *string `json:"code"`
			Param   *string `json:"param"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		s.err = &ProtocolError{Msg: fmt.Sprintf("unreadable event %.100q: %v", data, err)}
		s.Close()
		return false
	}
	if probe.Error != nil {
		code, param := "", ""
		if probe.Error.Code != nil {
			code = *probe.Error.Code
		}
		if probe.Error.Param != nil {
			param = *probe.Error.Param
		}
		s.err = newAPIError(0, code, probe.Error.Type, param, probe.Error.Message, 0)
		s.Close()
		return false
	}
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		s.err = &ProtocolError{Msg: fmt.Sprintf("unreadable chunk %.100q: %v", data, err)}
		s.Close()
		return false
	}
	s.cur = v
	return true
}

// Current is the chunk the last Next read.
func (s *Stream[T]) Current() T { return s.cur }

// Err is the error that ended the stream, nil when it ended with [DONE] (or was closed).
func (s *Stream[T]) Err() error { return s.err }

// Close closes the response (the server cancels the request if it still runs). Idempotent.
func (s *Stream[T]) Close() error {
	s.closeMu.Do(func() {
		s.closed = true
		s.cancel()
		s.resp.Body.Close()
	})
	return nil
}
