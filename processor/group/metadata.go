package group

import "encoding/json"

// The group protocol names. A member that offers neither is refused by
// Kafka; their names are part of the wire format.
const (
	EagerProtocol       = "valora-copartition-v1"
	CooperativeProtocol = "valora-copartition-v2"
)

// MemberData is a member's join metadata user data in the cooperative
// protocol: the URL it advertises and, for each task its store has a
// checkpoint for, the changelog offset after it. In the eager protocol the
// user data is the URL alone.
type MemberData struct {
	URL  string          `json:"url,omitempty"`
	Warm map[int32]int64 `json:"warm,omitempty"`
}

// ParseMemberData reads either form of a member's user data. Data it
// cannot read gives the zero MemberData.
func ParseMemberData(b []byte) MemberData {
	var d MemberData
	if len(b) > 0 && b[0] == '{' {
		if json.Unmarshal(b, &d) == nil {
			return d
		}
		return MemberData{}
	}
	return MemberData{URL: string(b)}
}

// AssignmentData is the user data of a member's assignment: the tasks it
// keeps a standby copy of.
type AssignmentData struct {
	Standby []int32 `json:"standby,omitempty"`
}
