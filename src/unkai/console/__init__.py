"""``unkai console <env>``: a read-only web console of one environment.

Pages, each answering one question: *Hosts* (each host's CPU, memory and disk,
allocated against schedulable and physical, by zone, and the VMs running on it),
*Instances* (every VM with its host, state, group and addresses), *Groups and pools*
(what the operator keeps, with the rollout's progress and its latest Events), *Plan*
(capacity and VM-vs-container density, as ``unkai plan``) and *History* (the stack's
updates). The data comes through the functions the CLI uses (:mod:`unkai.console._cloud`);
pages are drawn on the server (:mod:`unkai.console._app`) and need no build step.
"""

from unkai.console._app import PAGES, make_app
from unkai.console._cloud import Cloud

__all__ = ["PAGES", "Cloud", "make_app"]
