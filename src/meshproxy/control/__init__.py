"""The control plane's operations: the rules behind every API endpoint, dashboard form and
operator command. Validation comes from `meshproxy.domain.forms`, persistence from the store;
errors are typed so each face (HTTP API, dashboard, CLI) renders them its own way."""
