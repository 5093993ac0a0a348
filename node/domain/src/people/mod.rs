//! People: departments, users and their passwords, sign-in sessions, API tokens, and the
//! guard that locks an account after repeated wrong passwords.

mod apply;
mod model;
mod ops;
mod records;
mod state;

pub use model::{ApiToken, Department, Session, SignInGuard, SignInPolicy, User};
pub use ops::{
    CreateDepartment, CreateSession, CreateToken, CreateUser, DeleteDepartment, EndSession,
    EndUserSessions, PeopleOp, RecordSignInFailure, RevokeToken, SetPassword, Touch, UpdateUser,
};
pub(crate) use records::PeopleRecord;
pub(crate) use state::PeopleState;

use roomraft_replicated::WriteSet;

use crate::apply::{Bookings, Ctx, Res};

impl Bookings {
    pub(crate) fn apply_people(
        &mut self,
        ctx: &mut Ctx,
        op: &PeopleOp,
        writes: &mut WriteSet,
    ) -> Res {
        match op {
            PeopleOp::CreateUser(op) => self.create_user(ctx, op, writes),
            PeopleOp::UpdateUser(op) => self.update_user(ctx, op, writes),
            PeopleOp::CreateSession(op) => self.create_session(ctx, op, writes),
            PeopleOp::CreateDepartment(CreateDepartment { tenant, name }) => {
                self.create_department(ctx, *tenant, name, writes)
            }
            PeopleOp::DeleteDepartment(DeleteDepartment { tenant, department }) => {
                self.delete_department(ctx, *tenant, *department, writes)
            }
            PeopleOp::SetPassword(SetPassword {
                tenant,
                user,
                password_phc,
                keep_session,
            }) => self.set_password(ctx, *tenant, *user, password_phc, keep_session, writes),
            PeopleOp::EndSession(EndSession { sha256 }) => self.end_session(ctx, sha256, writes),
            PeopleOp::EndUserSessions(EndUserSessions { tenant, user }) => {
                self.end_user_sessions(ctx, *tenant, *user, writes)
            }
            PeopleOp::Touch(Touch { sha256 }) => self.touch(ctx, sha256, writes),
            PeopleOp::CreateToken(CreateToken {
                tenant,
                name,
                role,
                sha256,
            }) => self.create_token(ctx, *tenant, name, *role, sha256, writes),
            PeopleOp::RevokeToken(RevokeToken { tenant, token }) => {
                self.revoke_token(ctx, *tenant, *token, writes)
            }
            PeopleOp::RecordSignInFailure(RecordSignInFailure {
                tenant,
                user,
                policy,
            }) => self.sign_in_failed(ctx, *tenant, *user, policy, writes),
        }
    }
}
