"""The GraphQL schema: strawberry types, queries, mutations and subscriptions, one module per area."""
