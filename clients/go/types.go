package realm

import (
	"encoding/json"
	"errors"
)

// Ptr returns a pointer to v: for the optional fields of a request (Temperature: realm.Ptr(0.0)).
func Ptr[T any](v T) *T { return &v }

// Message is one chat message. Content is its text.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	Name    string `json:"name,omitempty"`
}

// StreamOptions of a streamed HTTP request.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// Sampling holds the sampling fields that chat and completion requests share. Nil pointers are
// left out (the server's defaults: llama.cpp's).
type Sampling struct {
	MaxTokens        *int     `json:"max_tokens,omitempty"`
	N                *int     `json:"n,omitempty"`
	Temperature      *float64 `json:"temperature,omitempty"`
	TopP             *float64 `json:"top_p,omitempty"`
	TopK             *int     `json:"top_k,omitempty"`
	MinP             *float64 `json:"min_p,omitempty"`
	FrequencyPenalty *float64 `json:"frequency_penalty,omitempty"`
	PresencePenalty  *float64 `json:"presence_penalty,omitempty"`
	RepeatPenalty    *float64 `json:"repeat_penalty,omitempty"`
	RepeatLastN      *int     `json:"repeat_last_n,omitempty"`
	Seed             *int64   `json:"seed,omitempty"`
	Stop             []string `json:"stop,omitempty"`
	IgnoreEOS        bool     `json:"ignore_eos,omitempty"`
	User             string   `json:"user,omitempty"`
}

// ChatCompletionRequest is the body of POST /v1/chat/completions (and of a realm.v1 `chat`).
// Extra fields are merged into the JSON body as they are.
type ChatCompletionRequest struct {
	Model    string    `json:"model,omitempty"`
	Messages []Message `json:"messages"`
	Sampling
	MaxCompletionTokens *int           `json:"max_completion_tokens,omitempty"`
	Logprobs            bool           `json:"logprobs,omitempty"`
	TopLogprobs         *int           `json:"top_logprobs,omitempty"`
	Stream              bool           `json:"stream,omitempty"`
	StreamOptions       *StreamOptions `json:"stream_options,omitempty"`
	Extra               map[string]any `json:"-"`
}

// CompletionRequest is the body of POST /v1/completions (and of a realm.v1 `complete`). Prompt
// is a string, []string, []int or [][]int.
type CompletionRequest struct {
	Model  string `json:"model,omitempty"`
	Prompt any    `json:"prompt"`
	Sampling
	Logprobs      *int           `json:"logprobs,omitempty"`
	Echo          bool           `json:"echo,omitempty"`
	Stream        bool           `json:"stream,omitempty"`
	StreamOptions *StreamOptions `json:"stream_options,omitempty"`
	Extra         map[string]any `json:"-"`
}

func mergeExtra(base []byte, extra map[string]any) ([]byte, error) {
	if len(extra) == 0 {
		return base, nil
	}
	var m map[string]any
	if err := json.Unmarshal(base, &m); err != nil {
		return nil, err
	}
	for k, v := range extra {
		m[k] = v
	}
	return json.Marshal(m)
}

// MarshalJSON merges Extra into the body.
func (r ChatCompletionRequest) MarshalJSON() ([]byte, error) {
	type plain ChatCompletionRequest
	if r.Messages == nil {
		return nil, errors.New("realm: ChatCompletionRequest.Messages is required")
	}
	b, err := json.Marshal(plain(r))
	if err != nil {
		return nil, err
	}
	return mergeExtra(b, r.Extra)
}

// MarshalJSON merges Extra into the body.
func (r CompletionRequest) MarshalJSON() ([]byte, error) {
	type plain CompletionRequest
	b, err := json.Marshal(plain(r))
	if err != nil {
		return nil, err
	}
	return mergeExtra(b, r.Extra)
}

// Usage of a request, in tokens.
type Usage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details,omitempty"`
}

// Timings of one choice, in milliseconds (llama-server's).
type Timings struct {
	QueueMS             float64 `json:"queue_ms"`
	PromptN             int     `json:"prompt_n"`
	CacheN              int     `json:"cache_n"`
	PromptMS            float64 `json:"prompt_ms"`
	PromptPerTokenMS    float64 `json:"prompt_per_token_ms"`
	PromptPerSecond     float64 `json:"prompt_per_second"`
	TTFTMS              float64 `json:"ttft_ms"`
	PredictedN          int     `json:"predicted_n"`
	PredictedMS         float64 `json:"predicted_ms"`
	PredictedPerTokenMS float64 `json:"predicted_per_token_ms"`
	PredictedPerSecond  float64 `json:"predicted_per_second"`
	Preemptions         int     `json:"preemptions"`
}

// ChatCompletion is a whole chat answer.
type ChatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint,omitempty"`
	Choices           []ChatChoice `json:"choices"`
	Usage             *Usage       `json:"usage,omitempty"`
	Timings           []Timings    `json:"timings,omitempty"`
}

// ChatChoice is one choice of a whole chat answer.
type ChatChoice struct {
	Index        int             `json:"index"`
	Message      Message         `json:"message"`
	FinishReason string          `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs,omitempty"`
}

// ChatCompletionChunk is one event of a streamed chat answer. The last chunk of a choice has its
// FinishReason and Timings; with include_usage a last chunk has no choices and the Usage.
type ChatCompletionChunk struct {
	ID                string            `json:"id"`
	Object            string            `json:"object"`
	Created           int64             `json:"created"`
	Model             string            `json:"model"`
	SystemFingerprint string            `json:"system_fingerprint,omitempty"`
	Choices           []ChatChunkChoice `json:"choices"`
	Usage             *Usage            `json:"usage,omitempty"`
	Timings           *Timings          `json:"timings,omitempty"`
}

// ChatChunkChoice is a choice's part of a chunk.
type ChatChunkChoice struct {
	Index int `json:"index"`
	Delta struct {
		Role    string `json:"role,omitempty"`
		Content string `json:"content,omitempty"`
	} `json:"delta"`
	FinishReason string          `json:"finish_reason,omitempty"`
	Logprobs     json.RawMessage `json:"logprobs,omitempty"`
	Timings      *Timings        `json:"timings,omitempty"`
}

// Completion is a whole text completion (also the shape of its streamed chunks).
type Completion struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint,omitempty"`
	Choices           []CompletionChoice `json:"choices"`
	Usage             *Usage             `json:"usage,omitempty"`
	Timings           json.RawMessage    `json:"timings,omitempty"` // a list whole, an object per chunk
}

// CompletionChoice is one choice of a completion.
type CompletionChoice struct {
	Index        int             `json:"index"`
	Text         string          `json:"text"`
	FinishReason string          `json:"finish_reason,omitempty"`
	Logprobs     json.RawMessage `json:"logprobs,omitempty"`
}

// Model is one entry of GET /v1/models.
type Model struct {
	ID          string `json:"id"`
	Object      string `json:"object"`
	Created     int64  `json:"created"`
	OwnedBy     string `json:"owned_by"`
	MaxModelLen int    `json:"max_model_len,omitempty"`
}

// ModelList is GET /v1/models.
type ModelList struct {
	Object string  `json:"object"`
	Data   []Model `json:"data"`
}
