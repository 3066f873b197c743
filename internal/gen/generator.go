package gen

import (
	"math"
	"strconv"

	"valora/schemas"
)

const (
	msPerDay = 86_400_000
	// never is the time of an event that will not happen.
	never = math.MaxInt64
	// idDigits is the width of the number in a customer id.
	idDigits = 8
	idLen    = 1 + idDigits
	// maxAmountMinor caps one purchase, so extreme draws stay in int64.
	maxAmountMinor = 1e15
	// A refund follows its purchase after refundMinDays plus an
	// exponential delay with mean refundMeanDays.
	refundMinDays  = 1
	refundMeanDays = 9
)

// Kind says which member of an Event is set.
type Kind uint8

// The event kinds.
const (
	// KindInteraction: Event.Interaction is set (topic interactions).
	KindInteraction Kind = iota + 1
	// KindPurchase: Event.Purchase is set (topic purchases); its Kind is
	// schemas.KindPurchase or schemas.KindRefund.
	KindPurchase
)

// String returns "interaction" or "purchase".
func (k Kind) String() string {
	switch k {
	case KindInteraction:
		return "interaction"
	case KindPurchase:
		return "purchase"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one generated input record. Only the member named by Kind is
// set; Next zeroes the other.
//
// The values that Satisfaction, Category and Attributes point to are owned
// by the Generator and shared between events: read them, never modify them.
type Event struct {
	Kind        Kind
	Interaction schemas.Interaction
	Purchase    schemas.Purchase
}

// CustomerID returns the customer id, the Kafka key of the event.
func (e *Event) CustomerID() string {
	if e.Kind == KindPurchase {
		return e.Purchase.CustomerID
	}
	return e.Interaction.CustomerID
}

// EventID returns the event id.
func (e *Event) EventID() string {
	if e.Kind == KindPurchase {
		return e.Purchase.EventID
	}
	return e.Interaction.EventID
}

// OccurredAt returns the event time in Unix milliseconds.
func (e *Event) OccurredAt() int64 {
	if e.Kind == KindPurchase {
		return e.Purchase.OccurredAt
	}
	return e.Interaction.OccurredAt
}

// customer is the simulation state of one customer: 64 bytes.
type customer struct {
	nextP, nextI int64  // next purchase and interaction, Unix ms, or never
	ctrP, ctrI   uint64 // positions in the purchase and interaction streams
	lambda       float32
	p            float32
	nu           float32
	mu           float32 // interactions per day while engaged
	purchases    uint32  // purchases so far; the next purchase's sequence number
	interactions uint32  // interactions so far
	flags        uint8
}

const (
	flagProspect = 1 << iota
	flagDead
	flagComplaint // a complaint awaits its resolution
)

// refund is a refund waiting for its time in the queue.
type refund struct {
	amount   int64
	items    int32
	cust     uint32
	seq      uint32 // the refunded purchase's sequence number
	currency uint8
	channel  uint8
	category uint8 // index into categories, or len(categories) for none
}

// currency is a purchase currency with its conversion from base-currency
// major units to its own minor units.
type currency struct {
	code         string
	minorPerBase float64
}

// Generator simulates a customer base and emits its events in time order.
// It is not safe for concurrent use.
type Generator struct {
	params     Params
	start, end int64 // Unix ms; events happen in [start, end)
	key        uint64
	ids        string // every customer id, idLen bytes each
	cust       []customer
	q          *radixQueue
	refunds    []refund
	free       []uint32
	s          *sampler
	buf        []byte
	emitted    uint64
	currencies []currency

	// Values events point to, one copy per Generator.
	scores     [11]int32
	categories []string
	campaigns  []map[string]string
	networks   []map[string]string
	reasons    []map[string]string
}

// New validates p and returns a Generator positioned before the first
// event. It draws every customer's latent parameters up front, in
// O(Customers) time and about 92 bytes per customer.
func New(p Params) (*Generator, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	n := p.Customers
	span := p.Horizon
	if span == 0 {
		span = MaxSpan
	}
	g := &Generator{
		params: p,
		start:  p.Start.UnixMilli(),
		key:    mix64(p.Seed ^ 0x6a09e667f3bcc908),
		cust:   make([]customer, n),
		s:      newSampler(),
		buf:    make([]byte, 0, 32),
	}
	g.end = g.start + span.Milliseconds()
	g.q = newRadixQueue(g.start)
	g.params.Currencies = append([]string(nil), p.currencies()...)
	basePerUSD, _, _ := ReferenceRate(g.params.Currencies[0])
	for _, code := range g.params.Currencies {
		perUSD, digits, _ := ReferenceRate(code)
		g.currencies = append(g.currencies, currency{
			code:         code,
			minorPerBase: perUSD / basePerUSD * math.Pow10(digits),
		})
	}
	for i := range g.scores {
		g.scores[i] = int32(i)
	}
	g.categories = append([]string(nil), categories...)
	g.campaigns = attrMaps("campaign", campaigns)
	g.networks = attrMaps("network", networks)
	g.reasons = attrMaps("reason", complaintReasons)

	ids := make([]byte, 0, n*idLen)
	for i := range n {
		ids = appendCustomerID(ids, i)
	}
	g.ids = string(ids)

	skewNorm := 1.0
	if p.Skew > 0 {
		h := 0.0
		for k := n; k >= 1; k-- { // smallest terms first
			h += math.Pow(float64(k), -p.Skew)
		}
		skewNorm = float64(n) / h
	}
	for i := range g.cust {
		g.initCustomer(i, skewNorm)
		c := &g.cust[i]
		if next := min(c.nextP, c.nextI); next != never {
			g.q.push(entry{at: next, cust: uint32(i)})
		}
	}
	return g, nil
}

// appendCustomerID appends the id of customer i to b.
func appendCustomerID(b []byte, i int) []byte {
	b = append(b, "c00000000"...)
	d := b[len(b)-idDigits:]
	for j := idDigits - 1; j >= 0 && i > 0; j-- {
		d[j] = byte('0' + i%10)
		i /= 10
	}
	return b
}

func attrMaps(key string, values []string) []map[string]string {
	out := make([]map[string]string, len(values))
	for i, v := range values {
		out[i] = map[string]string{key: v}
	}
	return out
}

// custKey returns the key of customer i's stream named by salt.
func (g *Generator) custKey(i uint32, salt uint64) uint64 {
	return mix64(g.key+uint64(i)*golden) ^ salt
}

// after returns at plus days, or never if that is at or past the end.
func (g *Generator) after(at int64, days float64) int64 {
	d := days*msPerDay + 0.5
	if !(d < float64(g.end-at)) { // also catches NaN and +Inf
		return never
	}
	t := at + int64(d)
	if t >= g.end {
		return never
	}
	return t
}

// initCustomer draws customer i's latent parameters and first events.
// The draws come in a fixed order from the customer's own stream.
func (g *Generator) initCustomer(i int, skewNorm float64) {
	p := &g.params
	s := g.s
	s.reset(g.custKey(uint32(i), streamInit), 0)
	uProspect := s.uniform()
	uArrival := s.uniform()
	lead := s.exp()
	engagement := s.gamma(2) / 2
	lambda := s.gamma(p.R) / p.Alpha
	dropout := s.beta(p.A, p.B)
	nu := s.gamma(p.Q) / p.Gamma
	if p.Skew > 0 {
		f := math.Pow(float64(i+1), -p.Skew) * skewNorm
		lambda *= f
		engagement *= f
	}

	c := &g.cust[i]
	c.lambda = float32(lambda)
	c.p = float32(dropout)
	c.nu = max(float32(nu), math.SmallestNonzeroFloat32)
	c.mu = float32(p.InteractionRate * engagement)
	c.nextP, c.nextI = never, never

	firstTouch := g.after(g.start, uArrival*p.ArrivalDays)
	if firstTouch == never {
		return
	}
	if c.mu > 0 {
		c.nextI = firstTouch
	}
	if uProspect < p.ProspectShare {
		c.flags |= flagProspect
		return
	}
	c.nextP = firstTouch
	if c.mu > 0 {
		c.nextP = g.after(firstTouch, lead*p.LeadDays)
	}
}

// Next fills ev with the next event and reports whether there was one.
// Events come in nondecreasing OccurredAt order; ties break by customer
// index. Next returns false once no customer has an event before the
// horizon. It allocates only the event id string.
func (g *Generator) Next(ev *Event) bool {
	top, ok := g.q.min()
	if !ok {
		return false
	}
	g.q.pop()
	g.emitted++
	if top.ref != 0 {
		g.emitRefund(ev, top)
		return true
	}
	c := &g.cust[top.cust]
	var pending entry
	if c.nextP <= c.nextI {
		pending = g.emitPurchase(ev, top.cust, c)
	} else {
		g.emitInteraction(ev, top.cust, c)
	}
	if next := min(c.nextP, c.nextI); next != never {
		g.q.push(entry{at: next, cust: top.cust})
	}
	if pending.ref != 0 {
		g.q.push(pending)
	}
	return true
}

// Peek returns the time of the event Next would return, in Unix
// milliseconds, without consuming it; ok is false when there is none.
func (g *Generator) Peek() (occurredAt int64, ok bool) {
	e, ok := g.q.min()
	return e.at, ok
}

// Emitted returns the number of events Next has returned.
func (g *Generator) Emitted() uint64 { return g.emitted }

// Params returns the parameters the Generator was built with, with the
// default currency list applied.
func (g *Generator) Params() Params { return g.params }

// CustomerID returns the id of customer i, 0 <= i < Params.Customers.
func (g *Generator) CustomerID(i int) string { return g.ids[i*idLen : (i+1)*idLen] }

// eventID returns the customer id + "-" + tag + seq. It formats the
// customer id again rather than copy it from ids, which would cost a cache
// miss in a large population.
func (g *Generator) eventID(cust uint32, tag byte, seq uint32) string {
	b := appendCustomerID(g.buf[:0], int(cust))
	b = append(b, '-', tag)
	b = strconv.AppendUint(b, uint64(seq), 10)
	g.buf = b
	return string(b)
}

// emitPurchase fills ev with customer i's next purchase and advances the
// purchase process. It returns the queue entry of the purchase's refund,
// or an entry with ref 0 when there is none.
func (g *Generator) emitPurchase(ev *Event, i uint32, c *customer) entry {
	p := &g.params
	s := g.s
	s.reset(g.custKey(i, streamPurchase), c.ctrP)
	at := c.nextP

	z := s.gamma(p.P) / float64(c.nu)
	cur := 0
	if len(g.currencies) > 1 {
		cur = s.rng.IntN(len(g.currencies))
	}
	amount := int64(min(math.Round(z*g.currencies[cur].minorPerBase), maxAmountMinor))
	amount = max(amount, 1)
	ch := s.pick(purchaseCum)
	cat := s.pick(categoryCum)
	items := int32(1)
	for items < maxItems && s.uniform() < moreItemsProb {
		items++
	}

	seq := c.purchases
	var pending entry
	if s.uniform() < p.RefundShare {
		if rat := g.after(at, refundMinDays+s.exp()*refundMeanDays); rat != never {
			pending = entry{at: rat, cust: i, ref: g.allocRefund(refund{
				amount:   amount,
				items:    items,
				cust:     i,
				seq:      seq,
				currency: uint8(cur),
				channel:  uint8(ch),
				category: uint8(cat),
			})}
		}
	}

	c.purchases++
	switch {
	case seq > 0 && s.uniform() < float64(c.p):
		// BG/NBD: after a repeat purchase the customer drops out with
		// probability p, and then neither buys nor interacts again.
		c.flags |= flagDead
		c.nextP, c.nextI = never, never
	case c.purchases == math.MaxUint32:
		c.nextP = never
	default:
		c.nextP = g.after(at, s.exp()/float64(c.lambda))
	}
	c.ctrP = s.src.ctr

	ev.Kind = KindPurchase
	ev.Interaction = schemas.Interaction{}
	ev.Purchase = schemas.Purchase{
		EventID:     g.eventID(i, 'p', seq),
		CustomerID:  g.CustomerID(int(i)),
		OccurredAt:  at,
		Kind:        schemas.KindPurchase,
		AmountMinor: amount,
		Currency:    g.currencies[cur].code,
		Channel:     schemas.Channels[ch],
		Category:    g.category(cat),
		Items:       items,
	}
	return pending
}

func (g *Generator) category(i int) *string {
	if i < len(g.categories) {
		return &g.categories[i]
	}
	return nil
}

func (g *Generator) allocRefund(r refund) uint32 {
	if n := len(g.free); n > 0 {
		slot := g.free[n-1]
		g.free = g.free[:n-1]
		g.refunds[slot] = r
		return slot + 1
	}
	g.refunds = append(g.refunds, r)
	return uint32(len(g.refunds))
}

// emitRefund fills ev with the refund of the queue entry e.
func (g *Generator) emitRefund(ev *Event, e entry) {
	slot := e.ref - 1
	r := g.refunds[slot]
	g.free = append(g.free, slot)
	ev.Kind = KindPurchase
	ev.Interaction = schemas.Interaction{}
	ev.Purchase = schemas.Purchase{
		EventID:     g.eventID(r.cust, 'r', r.seq),
		CustomerID:  g.CustomerID(int(r.cust)),
		OccurredAt:  e.at,
		Kind:        schemas.KindRefund,
		AmountMinor: r.amount,
		Currency:    g.currencies[r.currency].code,
		Channel:     schemas.Channels[r.channel],
		Category:    g.category(int(r.category)),
		Items:       r.items,
	}
}

// emitInteraction fills ev with customer i's next interaction and advances
// the interaction process.
func (g *Generator) emitInteraction(ev *Event, i uint32, c *customer) {
	p := &g.params
	s := g.s
	s.reset(g.custKey(i, streamInteraction), c.ctrI)
	at := c.nextI

	ch := s.pick(interactionCum)
	negative := s.uniform() < p.ComplaintShare
	var (
		typ   string
		sat   *int32
		attrs map[string]string
	)
	switch {
	case ch == chSurvey:
		typ = typeSurveyResponse
		score := lowScoreMax + 1 + s.pick(highScoreCum)
		if negative {
			score = s.rng.IntN(lowScoreMax + 1)
		}
		sat = &g.scores[score]
	case negative:
		typ = typeComplaint
		attrs = g.reasons[s.rng.IntN(len(g.reasons))]
		c.flags |= flagComplaint
	default:
		typ = interactionTypes[ch][s.pick(interactionTypeCum[ch])]
		switch ch {
		case chEmail:
			attrs = g.campaigns[s.rng.IntN(len(g.campaigns))]
		case chSocial:
			attrs = g.networks[s.rng.IntN(len(g.networks))]
		}
		// Service and consent events replace the drawn type, with no
		// draw of their own, so times and channels stay as they were.
		switch {
		case c.interactions == 0:
			typ = typeConsentGranted // the first touch opts in on its channel
		case c.flags&flagComplaint != 0 && serviceChannel(ch):
			typ = typeComplaintResolved
			c.flags &^= flagComplaint
		case typ == typeEmailReply && c.interactions%3 == 0:
			typ = typeConsentWithdrawn // an unsubscribe
		}
	}

	seq := c.interactions
	c.interactions++
	// Engagement ends after each interaction with probability
	// 1/(1+mu*EngagementDays): the number of interactions is geometric
	// with mean 1+mu*EngagementDays, so the engagement lifetime is
	// exponential with mean EngagementDays.
	mu := float64(c.mu)
	if s.uniform()*(1+mu*p.EngagementDays) < 1 || c.interactions == math.MaxUint32 {
		c.nextI = never
	} else {
		c.nextI = g.after(at, s.exp()/mu)
	}
	c.ctrI = s.src.ctr

	ev.Kind = KindInteraction
	ev.Purchase = schemas.Purchase{}
	ev.Interaction = schemas.Interaction{
		EventID:      g.eventID(i, 'i', seq),
		CustomerID:   g.CustomerID(int(i)),
		OccurredAt:   at,
		Channel:      schemas.Channels[ch],
		Type:         typ,
		Satisfaction: sat,
		Attributes:   attrs,
	}
}

// CustomerTruth is a customer's latent model state, for checking fits
// against the truth.
type CustomerTruth struct {
	// ID is the customer id.
	ID string
	// Prospect customers interact but never buy; their model parameters
	// below are drawn but unused.
	Prospect bool
	// Lambda is the purchase rate per day while alive, Skew included.
	Lambda float64
	// P is the probability of dropping out after each repeat purchase.
	P float64
	// Nu is the Gamma-Gamma rate: the customer's mean purchase value is
	// Params.P/Nu in base-currency major units.
	Nu float64
	// InteractionRate is the customer's interactions per day while engaged.
	InteractionRate float64
	// Alive is false once the customer has dropped out, as far as events
	// have been generated: after Next has returned false it says whether
	// the customer was alive at the horizon.
	Alive bool
	// Purchases and Interactions count the customer's events generated so
	// far (refunds not included).
	Purchases    int
	Interactions int
}

// Truth returns customer i's latent state, 0 <= i < Params.Customers. The
// float parameters are those the simulation uses (single precision).
func (g *Generator) Truth(i int) CustomerTruth {
	c := &g.cust[i]
	return CustomerTruth{
		ID:              g.CustomerID(i),
		Prospect:        c.flags&flagProspect != 0,
		Lambda:          float64(c.lambda),
		P:               float64(c.p),
		Nu:              float64(c.nu),
		InteractionRate: float64(c.mu),
		Alive:           c.flags&flagDead == 0,
		Purchases:       int(c.purchases),
		Interactions:    int(c.interactions),
	}
}
