package limits

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// Facts are what the limits need to know of one GraphQL operation.
type Facts struct {
	// Depth is the deepest nesting of fields that have a selection set,
	// as Hasura counts it: `{ viewer { name } }` is 1, `{ viewer { albums {
	// title } } }` is 2. Inline fragments and fragment spreads add nothing;
	// the subtrees of __schema and __type are not counted (introspection is
	// exempt from depth limits).
	Depth int
	// Nodes is the number of fields that have a selection set, each
	// fragment counted every time it is spread. It saturates at maxCount.
	Nodes int
	// Introspection is whether the operation selects __schema or __type
	// anywhere, fragments included (__typename is not introspection).
	Introspection bool
}

// maxCount is where Nodes saturates: far above any limit (maxLimit), and a
// document of a few kilobytes whose fragments spread each other twice per
// level would otherwise count past any integer.
const maxCount = maxLimit + 1

// ErrInvalid wraps every reason a document cannot be analysed; Hasura
// refuses such documents too.
var ErrInvalid = errors.New("invalid GraphQL document")

// document is the analysis of one query text: the facts of each operation.
type document struct {
	ops  map[string]Facts // by operation name; "" is the anonymous one
	n    int              // number of operations
	only Facts            // the operation when n == 1
	err  error            // the document is invalid
}

// analyse parses query and computes the facts of every operation.
func analyse(query string) *document {
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		return &document{err: fmt.Errorf("%w: %s", ErrInvalid, err.Error())}
	}
	if len(doc.Operations) == 0 {
		return &document{err: fmt.Errorf("%w: no operation in the document", ErrInvalid)}
	}
	a := &analyser{frags: make(map[string]*ast.FragmentDefinition, len(doc.Fragments)), done: map[string]Facts{}, visiting: map[string]bool{}}
	for _, f := range doc.Fragments {
		if _, dup := a.frags[f.Name]; dup {
			return &document{err: fmt.Errorf("%w: fragment %q is defined twice", ErrInvalid, f.Name)}
		}
		a.frags[f.Name] = f
	}
	d := &document{ops: make(map[string]Facts, len(doc.Operations)), n: len(doc.Operations)}
	for _, op := range doc.Operations {
		if _, dup := d.ops[op.Name]; dup {
			return &document{err: fmt.Errorf("%w: operation %q is defined twice", ErrInvalid, op.Name)}
		}
		f, err := a.selectionSet(op.SelectionSet)
		if err != nil {
			return &document{err: err}
		}
		d.ops[op.Name] = f
		d.only = f
	}
	return d
}

// operation selects the operation a request runs, as Hasura does: by
// operationName, or the only one when no name is given.
func (d *document) operation(name string) (Facts, error) {
	if d.err != nil {
		return Facts{}, d.err
	}
	if name == "" {
		if d.n != 1 {
			return Facts{}, fmt.Errorf("%w: exactly one operation has to be present in the document when operationName is not specified", ErrInvalid)
		}
		return d.only, nil
	}
	f, ok := d.ops[name]
	if !ok {
		return Facts{}, fmt.Errorf("%w: no such operation found in the document: %q", ErrInvalid, name)
	}
	return f, nil
}

// analyser computes facts with each fragment's facts memoised, so a
// fragment spread many times is walked once, and a cycle is found rather
// than followed.
type analyser struct {
	frags    map[string]*ast.FragmentDefinition
	done     map[string]Facts
	visiting map[string]bool
}

func (a *analyser) selectionSet(ss ast.SelectionSet) (Facts, error) {
	var out Facts
	for _, sel := range ss {
		var f Facts
		switch s := sel.(type) {
		case *ast.Field:
			if len(s.SelectionSet) == 0 {
				continue
			}
			child, err := a.selectionSet(s.SelectionSet)
			if err != nil {
				return Facts{}, err
			}
			f = Facts{Depth: child.Depth + 1, Nodes: addCount(child.Nodes, 1), Introspection: child.Introspection}
			if s.Name == "__schema" || s.Name == "__type" {
				f.Depth, f.Introspection = 0, true
			}
		case *ast.InlineFragment:
			child, err := a.selectionSet(s.SelectionSet)
			if err != nil {
				return Facts{}, err
			}
			f = child
		case *ast.FragmentSpread:
			child, err := a.fragment(s.Name)
			if err != nil {
				return Facts{}, err
			}
			f = child
		}
		out.Depth = max(out.Depth, f.Depth)
		out.Nodes = addCount(out.Nodes, f.Nodes)
		out.Introspection = out.Introspection || f.Introspection
	}
	return out, nil
}

func (a *analyser) fragment(name string) (Facts, error) {
	if f, ok := a.done[name]; ok {
		return f, nil
	}
	def, ok := a.frags[name]
	if !ok {
		return Facts{}, fmt.Errorf("%w: unknown fragment %q", ErrInvalid, name)
	}
	if a.visiting[name] {
		return Facts{}, fmt.Errorf("%w: fragment %q spreads itself", ErrInvalid, name)
	}
	a.visiting[name] = true
	f, err := a.selectionSet(def.SelectionSet)
	delete(a.visiting, name)
	if err != nil {
		return Facts{}, err
	}
	a.done[name] = f
	return f, nil
}

func addCount(a, b int) int {
	if s := a + b; s < maxCount {
		return s
	}
	return maxCount
}

// cache holds the analyses of recent query texts, keyed by their SHA-256,
// so a repeated query is not parsed again. It holds at most 2*half
// entries in two generations: a lookup that hits the older generation
// moves the entry to the newer one, and when the newer one is full the
// older one is dropped whole. It is safe for concurrent use.
type cache struct {
	mu       sync.Mutex
	half     int
	cur, old map[[sha256.Size]byte]*document
}

func newCache(entries int) *cache {
	half := max(entries/2, 1)
	return &cache{half: half, cur: make(map[[sha256.Size]byte]*document, half)}
}

// get returns the analysis of query, computing it on a miss.
func (c *cache) get(query string) *document {
	key := sha256.Sum256([]byte(query))
	c.mu.Lock()
	d, ok := c.cur[key]
	if !ok {
		if d, ok = c.old[key]; ok {
			c.put(key, d)
		}
	}
	c.mu.Unlock()
	if ok {
		return d
	}
	// Parsed outside the lock: two requests racing on a new query both
	// parse it, and the results are equal.
	d = analyse(query)
	c.mu.Lock()
	c.put(key, d)
	c.mu.Unlock()
	return d
}

func (c *cache) put(key [sha256.Size]byte, d *document) {
	if len(c.cur) >= c.half {
		c.old, c.cur = c.cur, make(map[[sha256.Size]byte]*document, c.half)
	}
	c.cur[key] = d
}

// len is the number of entries held, for tests.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.old)
}
