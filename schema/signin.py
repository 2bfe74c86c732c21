"""Member sign-in over GraphQL: memberSignIn, tokenRefresh, memberSignOut (open to
anyone: they carry their own proof) and memberPasswordSet (a member or an admin).
The rules are members.credentials'; the access token is minted by the API layer
(context.extra["mint_member_token"])."""

from __future__ import annotations

from datetime import datetime, timedelta

import strawberry

from members import credentials
from members.access import Role
from schema.context import Info
from schema.errors import UserError, mutation
from schema.members import Member, member_view
from schema.permissions import allow


@strawberry.type(description="Tokens of a signed-in member.")
class MemberSession:
    access_token: str = strawberry.field(description="Bearer token for the API (role member), short-lived.")
    access_token_expires_at: datetime = strawberry.field(description="When the access token stops working.")
    refresh_token: str = strawberry.field(
        description="Single-use token for tokenRefresh (each use returns the next); keep it secret."
    )
    refresh_token_expires_at: datetime = strawberry.field(description="When the refresh token stops working.")


@strawberry.input(description="A member's sign-in.")
class MemberSignInInput:
    login: str = strawberry.field(description="Card number (e.g. CA123456789) or phone number.")
    password: str = strawberry.field(description="The member's password.")


@strawberry.type(description="Result of memberSignIn or tokenRefresh.")
class MemberSignInPayload:
    session: MemberSession | None = strawberry.field(description="The tokens; null when refused.")
    member: Member | None = strawberry.field(description="The signed-in member.")
    user_errors: list[UserError] = strawberry.field(
        description="INVALID_CREDENTIALS, LOCKED (too many failures: try later), INVALID_TOKEN, MEMBER_NOT_ACTIVE."
    )


@strawberry.input(description="A refresh token to use up (tokenRefresh) or whose sign-in to end (memberSignOut).")
class RefreshTokenInput:
    refresh_token: str = strawberry.field(description="The refresh token.")


@strawberry.type(description="Result of memberSignOut.")
class MemberSignOutPayload:
    signed_out: bool = strawberry.field(default=False, description="True when every token of that sign-in is revoked.")
    user_errors: list[UserError] = strawberry.field(description="INVALID_TOKEN for an unknown token.")


@strawberry.input(description="A member's new password.")
class MemberPasswordSetInput:
    member_id: strawberry.ID = strawberry.field(description="The member (a member: their own id).")
    new_password: str = strawberry.field(description="10 to 128 characters.")
    current_password: str | None = strawberry.field(
        default=None, description="A member changing their password: the current one."
    )


@strawberry.type(description="Result of memberPasswordSet.")
class MemberPasswordSetPayload:
    member: Member | None = strawberry.field(description="The member whose password was set.")
    user_errors: list[UserError] = strawberry.field(description="Why it was refused.")


def _payload(info: Info, signed: credentials.SignedIn) -> MemberSignInPayload:
    token, seconds = info.context.extra["mint_member_token"](signed.member.id)
    session = MemberSession(
        access_token=token, access_token_expires_at=info.context.now() + timedelta(seconds=seconds),
        refresh_token=signed.refresh_token, refresh_token_expires_at=signed.refresh_expires_at,
    )
    return MemberSignInPayload(session=session, member=Member.from_row(signed.member), user_errors=[])


@strawberry.type
class SignInMutation:
    @mutation(description="Sign a member in with card number or phone and password: an access and a refresh token.")
    async def member_sign_in(self, info: Info, input: MemberSignInInput) -> MemberSignInPayload:
        return _payload(info, await credentials.sign_in(input.login, input.password, now=info.context.now()))

    @mutation(description="Use up a refresh token for new tokens (rotation: the old refresh token is refused after).")
    async def token_refresh(self, info: Info, input: RefreshTokenInput) -> MemberSignInPayload:
        return _payload(info, await credentials.refresh(input.refresh_token, now=info.context.now()))

    @mutation(description="Sign out: revoke every refresh token of the sign-in this one came from.")
    async def member_sign_out(self, info: Info, input: RefreshTokenInput) -> MemberSignOutPayload:
        await credentials.sign_out(input.refresh_token, now=info.context.now())
        return MemberSignOutPayload(signed_out=True, user_errors=[])

    @mutation(
        description="Set a member's password: the member their own (with the current one), or an admin any member's.",
        permission_classes=[allow(Role.MEMBER, Role.ADMIN)],
    )
    async def member_password_set(self, info: Info, input: MemberPasswordSetInput) -> MemberPasswordSetPayload:
        row = await credentials.set_password(
            info.context.caller, input.member_id, input.new_password, current_password=input.current_password,
            now=info.context.now(),
        )
        return MemberPasswordSetPayload(member=member_view(info, row), user_errors=[])
