"""What dunning decides, pure, a module per decision: the schedule (policy, evaluate, next step's
day), the sweep (what a due case becomes), notices (the account after a notice, the dates and the
reason it names), banners (who sees which), access (who may use the dashboard), reactivation
(the window's days), preview (R8.8, in words), policy_change (open cases under a new policy)."""
