package gateway

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"gatehouse/internal/jsonrpc"
	"gatehouse/internal/upstream"
)

// A stateless (2026-07-28) client learns about list changes only through
// subscriptions/listen. The gateway answers that request itself, for every
// virtual server, because the changes come from more places than one
// upstream:
//
//   - each member that speaks 2026-07-28 gets a listen request of its own,
//     whose notifications are relayed (its acknowledgement is not: the
//     gateway acknowledges once, for the whole virtual server);
//   - a member of an older revision announces changes on the gateway's
//     session with it (see handleShared);
//   - the gateway itself changes lists when a reload changes the virtual
//     server and when an upstream dies or comes back.
//
// Stateful sessions get the same changes through Session.sendListChanged.

// listener is one open subscriptions/listen request.
type listener struct {
	r  Replier
	id []byte // the client's request id: the subscription id
	// The list changes the client asked for.
	tools, prompts, resources bool
}

// listSubscriptions is the notifications member of subscriptions/listen.
type listSubscriptions struct {
	ToolsListChanged      bool     `json:"toolsListChanged,omitempty"`
	PromptsListChanged    bool     `json:"promptsListChanged,omitempty"`
	ResourcesListChanged  bool     `json:"resourcesListChanged,omitempty"`
	ResourceSubscriptions []string `json:"resourceSubscriptions,omitempty"`
}

// send delivers notifications/{kind}/list_changed for the kinds the client
// asked for; kinds nil means all three.
func (l *listener) send(kinds []string) {
	if kinds == nil {
		kinds = []string{"tools", "prompts", "resources"}
	}
	for _, k := range kinds {
		if (k == "tools" && l.tools) || (k == "prompts" && l.prompts) || (k == "resources" && l.resources) {
			_ = l.r.Send(jsonrpc.Notification("notifications/"+k+"/list_changed", l.meta()))
		}
	}
}

// meta is the params of a notification on the listen stream.
func (l *listener) meta() []byte {
	return []byte(`{"_meta":{` + string(jsonrpc.Quote(upstream.SubscriptionIDKey)) + `:` + string(l.id) + `}}`)
}

// listen serves subscriptions/listen until the client closes the stream.
func (x *exchange) listen(ctx context.Context) {
	var p struct {
		Notifications *listSubscriptions `json:"notifications"`
	}
	if x.m.Params == nil || json.Unmarshal(x.m.Params, &p) != nil || p.Notifications == nil {
		x.fail(jsonrpc.NewError(jsonrpc.CodeInvalidParams, "subscriptions/listen needs params.notifications"))
		return
	}
	want := p.Notifications
	l := &listener{r: x.r, id: x.m.ID, tools: want.ToolsListChanged, prompts: want.PromptsListChanged, resources: want.ResourcesListChanged}
	x.g.addListener(x.vs.Name, l)
	defer x.g.removeListener(x.vs.Name, l)

	// The gateway can announce every kind of list change, whatever its
	// members do; resource updates come from the members that serve them.
	ack, _ := json.Marshal(want)
	_ = x.r.Send(jsonrpc.Notification("notifications/subscriptions/acknowledged",
		[]byte(`{"_meta":{`+string(jsonrpc.Quote(upstream.SubscriptionIDKey))+`:`+string(x.m.ID)+`},"notifications":`+string(ack)+`}`)))

	var wg sync.WaitGroup
	for _, mb := range x.vs.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x.listenMember(ctx, mb, l)
		}()
	}
	wg.Wait()
	x.result(l.meta())
}

// listenMember keeps a listen request open on a member that speaks
// 2026-07-28 while the client listens. When the connection fails, the
// member's items are gone (list_changed); it is retried with backoff, and
// its return is announced too.
func (x *exchange) listenMember(ctx context.Context, mb *member, l *listener) {
	backoff := minBackoff
	gone := false
	for ctx.Err() == nil {
		_, err := mb.e.statelessClient(ctx)
		if err == nil && !mb.e.speaksModern() {
			return // an older revision: handleShared relays its changes
		}
		if err == nil {
			if gone {
				l.send(nil) // it came back
				gone = false
			}
			var resp *jsonrpc.Message
			resp, err = x.call(ctx, mb, nil, "")
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				// The member answered: it refused (e.g. a resource it does
				// not serve) or has nothing it can announce (an upstream
				// with no active subscription answers at once). Opening
				// it again would only repeat that; the other members and
				// the gateway still serve the stream.
				if resp.Kind == jsonrpc.KindError {
					x.g.log.Debug("member refused subscriptions/listen", "server", x.vs.Name, "upstream", mb.e.name, "error", string(resp.Error))
				}
				return
			}
		}
		if !gone {
			l.send(nil)
			gone = true
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func (g *Gateway) addListener(vsName string, l *listener) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.listeners == nil {
		g.listeners = map[string]map[*listener]struct{}{}
	}
	set := g.listeners[vsName]
	if set == nil {
		set = map[*listener]struct{}{}
		g.listeners[vsName] = set
	}
	set[l] = struct{}{}
}

func (g *Gateway) removeListener(vsName string, l *listener) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.listeners[vsName], l)
}

// notifyListeners tells the listeners of a virtual server that lists of
// the given kinds (nil: all) may have changed.
func (g *Gateway) notifyListeners(vsName string, kinds []string) {
	g.mu.Lock()
	ls := make([]*listener, 0, len(g.listeners[vsName]))
	for l := range g.listeners[vsName] {
		ls = append(ls, l)
	}
	g.mu.Unlock()
	for _, l := range ls {
		l.send(kinds)
	}
}

// notifyListenersOf tells the listeners of every virtual server that has e
// as a member that its lists of the given kinds (nil: all) may have changed.
func (g *Gateway) notifyListenersOf(e *entry, kinds []string) {
	for name, vs := range g.snap.Load().servers {
		for _, mb := range vs.members {
			if mb.e == e {
				g.notifyListeners(name, kinds)
				break
			}
		}
	}
}

// kindsOf returns the list kinds an upstream declared (nil when unknown:
// all of them).
func kindsOf(ir *upstream.InitResult) []string {
	if ir == nil {
		return nil
	}
	kinds := []string{}
	for _, k := range []string{"tools", "prompts", "resources"} {
		if ir.Has(k) {
			kinds = append(kinds, k)
		}
	}
	return kinds
}
