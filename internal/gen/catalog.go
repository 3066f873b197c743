package gen

import "valora/schemas"

// The tables below shape the events' descriptive fields. They are part of
// the deterministic output: changing a weight changes the event sequence.

// cumulative returns the running sums of w.
func cumulative(w []float64) []float64 {
	out := make([]float64, len(w))
	sum := 0.0
	for i, v := range w {
		sum += v
		out[i] = sum
	}
	return out
}

// Interaction channels favour web, app and email; every channel gets some.
// Indexed like schemas.Channels: EMAIL, PHONE, WEB, APP, STORE, SOCIAL,
// SURVEY, CHAT, FAX, OTHER.
var interactionCum = cumulative([]float64{20, 5, 30, 20, 6, 7, 4, 5, 1, 2})

// Purchase channels, indexed like schemas.Channels; nobody buys by survey
// or fax.
var purchaseCum = cumulative([]float64{3, 7, 40, 25, 20, 2, 0, 2, 0, 1})

// channelIndex positions, for the channels with special handling.
const (
	chEmail  = 0
	chPhone  = 1
	chSocial = 5
	chSurvey = 6
	chChat   = 7
)

// interactionTypes are the types of non-negative interactions per channel,
// indexed like schemas.Channels, with their weights.
var interactionTypes = [schemas.NumChannels][]string{
	{"email_open", "click", "email_reply"},
	{"call", "support_ticket"},
	{"visit", "page_view", "click"},
	{"app_open", "click"},
	{"store_visit"},
	{"mention", "like"},
	{"survey_response"},
	{"chat", "support_ticket"},
	{"fax"},
	{"other"},
}

var interactionTypeCum = [schemas.NumChannels][]float64{
	cumulative([]float64{60, 30, 10}),
	cumulative([]float64{70, 30}),
	cumulative([]float64{60, 25, 15}),
	cumulative([]float64{70, 30}),
	cumulative([]float64{1}),
	cumulative([]float64{50, 50}),
	cumulative([]float64{1}),
	cumulative([]float64{70, 30}),
	cumulative([]float64{1}),
	cumulative([]float64{1}),
}

// Interaction types with special meaning.
const (
	typeComplaint         = "complaint"
	typeSurveyResponse    = "survey_response"
	typeComplaintResolved = "complaint_resolved"
	typeConsentGranted    = "consent_granted"
	typeConsentWithdrawn  = "consent_withdrawn"
	typeEmailReply        = "email_reply"
)

// serviceChannel reports whether a complaint is answered on channel index
// ch: phone, email and chat.
func serviceChannel(ch int) bool { return ch == chEmail || ch == chPhone || ch == chChat }

// Survey scores: a negative survey scores 0..4 uniformly, any other one
// 5..10 with these weights.
const lowScoreMax = 4

var highScoreCum = cumulative([]float64{5, 8, 15, 27, 25, 20})

// Attribute values. Each becomes one map per Generator, shared by the
// events that carry it.
var (
	campaigns        = []string{"welcome", "newsletter", "seasonal_sale", "win_back"}
	networks         = []string{"instagram", "facebook", "x", "tiktok"}
	complaintReasons = []string{"delivery", "billing", "product_quality", "service"}
)

// categories of purchases, with their weights; the last weight is the
// share of purchases with no category.
var (
	categories  = []string{"music", "books", "electronics", "home", "apparel", "toys", "sports", "grocery"}
	categoryCum = cumulative([]float64{25, 15, 15, 10, 10, 8, 7, 5, 5})
)

// Items per purchase: 1 plus a geometric number, at most maxItems.
const (
	moreItemsProb = 0.35
	maxItems      = 20
)
