// Package httpx owns the small request context and router the admin and
// portal handlers are written against: net/http's ServeMux (Go 1.22
// patterns) underneath, with the handful of helpers the handlers use
// (PostForm, Query, JSON, Redirect, a middleware chain with Next and
// Abort, per-request values). It replaced gin, whose dependencies
// (HTTP/3, BSON, TOML, YAML and validation libraries none of the handlers
// used) were a sixth of the daemon's binary; the method names are gin's,
// so a handler moves from one to the other by changing its import.
package httpx

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// H is a shorthand for a JSON object.
type H map[string]any

// HandlerFunc is a handler or a middleware: a middleware calls c.Next to
// run the rest of the chain, or c.Abort to stop it.
type HandlerFunc func(*Context)

// maxMultipartMemory is how much of a multipart form is held in memory
// before its files spill to disk; request bodies are bounded well below
// it by the server anyway.
const maxMultipartMemory = 32 << 20

// abortIndex is past any chain, so Next runs nothing more after Abort.
const abortIndex = math.MaxInt / 2

// Context is one request: the request, its response and the chain of
// handlers that serve it.
type Context struct {
	Request *http.Request
	Writer  ResponseWriter

	handlers []HandlerFunc
	index    int
	fullPath string
	keys     map[string]any
	query    url.Values
	formRead bool
}

// NewContext makes a Context outside a Router, for a handler called
// directly (tests, adapters): its chain is handlers.
func NewContext(w http.ResponseWriter, r *http.Request, handlers ...HandlerFunc) *Context {
	return &Context{Request: r, Writer: &responseWriter{ResponseWriter: w, status: http.StatusOK}, handlers: handlers, index: -1}
}

// Run runs the context's chain from its start and writes the status if no
// handler wrote anything (a handler that does nothing answers 200).
func (c *Context) Run() {
	c.index = -1
	c.Next()
	if w, ok := c.Writer.(*responseWriter); ok {
		w.writeHeaderNow()
	}
}

// Next runs the rest of the chain; a middleware calls it to wrap what
// follows it (a log line after, a recover around).
func (c *Context) Next() {
	c.index++
	for c.index < len(c.handlers) {
		c.handlers[c.index](c)
		c.index++
	}
}

// Abort stops the chain after the current handler.
func (c *Context) Abort() { c.index = abortIndex }

// IsAborted reports whether Abort was called.
func (c *Context) IsAborted() bool { return c.index >= abortIndex }

// AbortWithStatus stops the chain and writes status with no body.
func (c *Context) AbortWithStatus(status int) {
	c.Writer.WriteHeader(status)
	if w, ok := c.Writer.(*responseWriter); ok {
		w.writeHeaderNow()
	}
	c.Abort()
}

// AbortWithStatusJSON stops the chain and answers obj as JSON.
func (c *Context) AbortWithStatusJSON(status int, obj any) {
	c.Abort()
	c.JSON(status, obj)
}

// FullPath is the route the request matched, as it was declared
// ("/api/v1/vouchers/:id/revoke"); "" when it matched none.
func (c *Context) FullPath() string { return c.fullPath }

// Set keeps a value for the rest of the chain (the signed-in user, say).
func (c *Context) Set(key string, value any) {
	if c.keys == nil {
		c.keys = map[string]any{}
	}
	c.keys[key] = value
}

// Get returns a value Set earlier in the chain.
func (c *Context) Get(key string) (any, bool) {
	v, ok := c.keys[key]
	return v, ok
}

// Param is the value of a path parameter (":id" in the route).
func (c *Context) Param(name string) string { return c.Request.PathValue(name) }

// Query is the first value of a URL query parameter, "" when absent.
func (c *Context) Query(key string) string {
	if c.query == nil {
		c.query = c.Request.URL.Query()
	}
	return c.query.Get(key)
}

// DefaultQuery is Query with a value for an absent parameter.
func (c *Context) DefaultQuery(key, def string) string {
	if c.query == nil {
		c.query = c.Request.URL.Query()
	}
	if vs, ok := c.query[key]; ok && len(vs) > 0 {
		return vs[0]
	}
	return def
}

// readForm parses the body once, as a URL-encoded or a multipart form. A
// body that is neither, or too large, leaves the form empty: the handler
// then sees missing fields, as it would for a form sent without them.
func (c *Context) readForm() {
	if c.formRead {
		return
	}
	c.formRead = true
	// An error (a body over its limit, a malformed encoding) leaves the
	// form as far as it was parsed, as gin did; http.ErrNotMultipart is
	// the usual URL-encoded form, parsed all the same.
	_ = c.Request.ParseMultipartForm(maxMultipartMemory)
}

// PostForm is the first value of a field of the request's form body
// (never of the URL query), "" when absent.
func (c *Context) PostForm(key string) string {
	c.readForm()
	if vs := c.Request.PostForm[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// MultipartForm is the parsed multipart body, with its files.
func (c *Context) MultipartForm() (*multipart.Form, error) {
	c.readForm()
	if c.Request.MultipartForm == nil {
		if err := c.Request.ParseMultipartForm(maxMultipartMemory); err != nil {
			return nil, fmt.Errorf("httpx: read multipart form: %w", err)
		}
	}
	return c.Request.MultipartForm, nil
}

// GetHeader is a request header.
func (c *Context) GetHeader(key string) string { return c.Request.Header.Get(key) }

// Header sets a response header; an empty value deletes it.
func (c *Context) Header(key, value string) {
	if value == "" {
		c.Writer.Header().Del(key)
		return
	}
	c.Writer.Header().Set(key, value)
}

// Status sets the response status without writing anything yet.
func (c *Context) Status(status int) { c.Writer.WriteHeader(status) }

// String answers plain text: format, or format with values as fmt.Sprintf
// reads them when there are any.
func (c *Context) String(status int, format string, values ...any) {
	c.setType("text/plain; charset=utf-8")
	c.Writer.WriteHeader(status)
	if !bodyAllowed(status) {
		return
	}
	if len(values) > 0 {
		fmt.Fprintf(c.Writer, format, values...)
		return
	}
	io.WriteString(c.Writer, format)
}

// JSON answers obj as JSON. An obj that cannot be encoded is a
// programming error, and panics as it would have in gin (the server's
// recover turns it into a 500).
func (c *Context) JSON(status int, obj any) {
	c.setType("application/json; charset=utf-8")
	c.Writer.WriteHeader(status)
	if !bodyAllowed(status) {
		return
	}
	b, err := json.Marshal(obj)
	if err != nil {
		panic(fmt.Errorf("httpx: encode JSON: %w", err))
	}
	c.Writer.Write(b)
}

// Data answers data with the content type given.
func (c *Context) Data(status int, contentType string, data []byte) {
	c.setType(contentType)
	c.Writer.WriteHeader(status)
	if !bodyAllowed(status) {
		return
	}
	c.Writer.Write(data)
}

// Redirect answers a redirect to location; status is a 3xx (or 201).
func (c *Context) Redirect(status int, location string) {
	if (status < http.StatusMultipleChoices || status > http.StatusPermanentRedirect) && status != http.StatusCreated {
		panic(fmt.Sprintf("httpx: cannot redirect with status %d", status))
	}
	http.Redirect(c.Writer, c.Request, location, status)
}

func (c *Context) setType(t string) {
	h := c.Writer.Header()
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", t)
	}
}

// bodyAllowed is false for the statuses that carry no body.
func bodyAllowed(status int) bool {
	return !(status >= 100 && status <= 199 || status == http.StatusNoContent || status == http.StatusNotModified)
}

// ResponseWriter is the response: an http.ResponseWriter that remembers
// its status, so a log line after the handler can report it. Its status is
// written with the first byte of the body (or when the chain ends), so a
// handler may still change it until then.
type ResponseWriter interface {
	http.ResponseWriter
	http.Flusher
	// Status is the status written or to be written.
	Status() int
	// Written reports whether the status line has gone out.
	Written() bool
}

type responseWriter struct {
	http.ResponseWriter
	status  int
	written bool
}

func (w *responseWriter) WriteHeader(status int) {
	if status > 0 && !w.written {
		w.status = status
	}
}

func (w *responseWriter) writeHeaderNow() {
	if !w.written {
		w.written = true
		w.ResponseWriter.WriteHeader(w.status)
	}
}

func (w *responseWriter) Write(b []byte) (int, error) {
	w.writeHeaderNow()
	return w.ResponseWriter.Write(b)
}

func (w *responseWriter) WriteString(s string) (int, error) {
	w.writeHeaderNow()
	return io.WriteString(w.ResponseWriter, s)
}

func (w *responseWriter) Status() int   { return w.status }
func (w *responseWriter) Written() bool { return w.written }

func (w *responseWriter) Flush() {
	w.writeHeaderNow()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack lets a handler take the connection over (http.ResponseController).
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := w.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("httpx: the response cannot be hijacked")
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Router routes requests by method and path through a ServeMux, running
// the middleware added by Use before each route's own handlers.
type Router struct {
	mux        *http.ServeMux
	middleware []HandlerFunc
	hasNoRoute bool
}

// NewRouter returns an empty router; an unmatched request gets a plain 404
// until NoRoute says otherwise.
func NewRouter() *Router { return &Router{mux: http.NewServeMux()} }

// Use adds middleware to every route added after it, and to NoRoute.
func (r *Router) Use(m ...HandlerFunc) { r.middleware = append(r.middleware, m...) }

// Handle adds a route. path takes gin's parameter syntax (":id" for a
// segment, "*rest" for the rest of the path) or ServeMux's ("{id}",
// "{rest...}"); a path ending in "/" matches itself only, not the tree
// under it. A path added twice for a method panics, like ServeMux.
func (r *Router) Handle(method, path string, handlers ...HandlerFunc) {
	chain := r.chain(handlers)
	r.mux.Handle(method+" "+MuxPattern(path), r.serve(path, chain))
}

// NoRoute sets the handlers for a request no route matches, whatever its
// method (the middleware runs first, as for a route).
func (r *Router) NoRoute(handlers ...HandlerFunc) {
	if r.hasNoRoute {
		panic("httpx: NoRoute set twice")
	}
	r.hasNoRoute = true
	r.mux.Handle("/", r.serve("", r.chain(handlers)))
}

func (r *Router) chain(handlers []HandlerFunc) []HandlerFunc {
	chain := make([]HandlerFunc, 0, len(r.middleware)+len(handlers))
	chain = append(chain, r.middleware...)
	return append(chain, handlers...)
}

func (r *Router) serve(fullPath string, chain []HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c := NewContext(w, req, chain...)
		c.fullPath = fullPath
		c.Run()
	})
}

// ServeHTTP routes a request.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) { r.mux.ServeHTTP(w, req) }

// MuxPattern turns a route path in gin's syntax into ServeMux's: ":id"
// segments become "{id}", a final "*rest" becomes "{rest...}", and a
// trailing "/" is anchored with "{$}" so it does not match the tree below.
func MuxPattern(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		switch {
		case strings.HasPrefix(s, ":") && len(s) > 1:
			segs[i] = "{" + s[1:] + "}"
		case strings.HasPrefix(s, "*") && len(s) > 1 && i == len(segs)-1:
			segs[i] = "{" + s[1:] + "...}"
		}
	}
	p := strings.Join(segs, "/")
	if strings.HasSuffix(p, "/") {
		p += "{$}"
	}
	return p
}

// DecodeJSON reads the request body as exactly one JSON object into dst,
// refusing unknown fields and anything after the object; its error is worded
// for the API client that sent the body.
func (c *Context) DecodeJSON(dst any) error {
	dec := json.NewDecoder(c.Request.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("the request body must be a JSON object")
		}
		return fmt.Errorf("the request body is not valid: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("the request body must hold one JSON object only")
	}
	return nil
}
