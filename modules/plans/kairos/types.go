// Package kairos defines the Kairos operator's NodeOpUpgrade
// (operator.kairos.io/v1alpha1). No Go module of the operator's API can be
// fetched here, so the type is written from its upstream definition,
// field for field and with the same JSON names; the plans tests pin the
// field list so that a drift is noticed.
package kairos

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Group, version and kind of NodeOpUpgrade.
const (
	Group      = "operator.kairos.io"
	Version    = "v1alpha1"
	APIVersion = Group + "/" + Version
	Kind       = "NodeOpUpgrade"
)

// NodeOpUpgrade upgrades Kairos nodes to the OS in an image.
type NodeOpUpgrade struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   NodeOpUpgradeSpec   `json:"spec,omitempty"`
	Status NodeOpUpgradeStatus `json:"status,omitempty"`
}

// NodeOpUpgradeSpec is what to upgrade, where and how fast.
type NodeOpUpgradeSpec struct {
	// NodeSelector picks the nodes; empty means every node.
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`
	// Image holds the Kairos release to upgrade to.
	Image            string                        `json:"image"`
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
	// Concurrency 0 upgrades every selected node at once.
	Concurrency int32 `json:"concurrency,omitempty"`
	// StopOnFailure stops creating Jobs after one fails.
	StopOnFailure   *bool `json:"stopOnFailure,omitempty"`
	UpgradeRecovery *bool `json:"upgradeRecovery,omitempty"`
	UpgradeActive   *bool `json:"upgradeActive,omitempty"`
	// Force upgrades even when the node already runs the image's version.
	Force             *bool `json:"force,omitempty"`
	Debug             *bool `json:"debug,omitempty"`
	UncordonOnFailure *bool `json:"uncordonOnFailure,omitempty"`
}

// NodeOpUpgradeStatus is written by the operator.
type NodeOpUpgradeStatus struct {
	Phase        string                `json:"phase,omitempty"`
	NodeOpName   string                `json:"nodeOpName,omitempty"`
	NodeStatuses map[string]NodeStatus `json:"nodeStatuses,omitempty"`
	Message      string                `json:"message,omitempty"`
	LastUpdated  metav1.Time           `json:"lastUpdated,omitempty"`
}

// NodeStatus is the upgrade's state on one node.
type NodeStatus struct {
	Phase       string      `json:"phase"`
	JobName     string      `json:"jobName,omitempty"`
	Message     string      `json:"message,omitempty"`
	LastUpdated metav1.Time `json:"lastUpdated,omitempty"`
}
