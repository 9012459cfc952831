package com.apsis.sso.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class LinkPolicyTest {

    static final String OID = "00000000-0000-0000-0000-0000000000a1";
    static final String EMAIL = "alice@acme.com";

    static final String TENANT = "aaaaaaaa-0000-4000-8000-000000000001";
    static final String OTHER_TENANT = "bbbbbbbb-0000-4000-8000-000000000002";

    static final List<Account.Domain> ACME_DOMAINS = List.of(
            new Account.Domain("acme.com", true),
            new Account.Domain("acme.se", true),
            new Account.Domain("acme-unverified.com", false));

    /** The usual account: acme.com proven for its tenant (acme.se not). */
    static Account account(Stage stage, String... pilot) {
        return Account.of(stage, Arrays.asList(pilot), ACME_DOMAINS, Set.of("acme.com"));
    }

    /** The same account with no domain proven (an override, or a proof lost to the daily re-check). */
    static Account unproven(Stage stage, String... pilot) {
        return Account.of(stage, Arrays.asList(pilot), ACME_DOMAINS, Set.of());
    }

    static Candidate alice() {
        return new Candidate("u-alice", EMAIL, true, true, null);
    }

    /** A user store that answers with fixed users and records the emails it was asked for. */
    static final class Store implements Function<String, List<Candidate>> {
        final List<Candidate> users;
        final List<String> asked = new ArrayList<>();

        Store(Candidate... users) {
            this.users = List.of(users);
        }

        @Override
        public List<Candidate> apply(String email) {
            asked.add(email);
            return users;
        }
    }

    /** A link decision for a token without {@code xms_edov} (null) or carrying it with {@code edov}. */
    static LinkDecision link(Account account, String email, Claim edov, Candidate... users) {
        return LinkPolicy.link(account, email, edov == null ? Claim.ABSENT : edov, OID, new Store(users));
    }

    static void assertRefused(Reason expected, LinkDecision decision) {
        assertFalse(decision.allowed(), "expected refusal " + expected);
        assertEquals(expected, decision.reason());
        assertNull(decision.userId());
    }

    static void assertLinked(String userId, LinkDecision decision) {
        assertTrue(decision.allowed(), () -> "expected link, got " + decision.reason());
        assertEquals(userId, decision.userId());
    }

    @Nested
    class Link {

        @Test
        void linksTheOneEnabledMemberOnThePilotList() {
            assertLinked("u-alice", link(account(Stage.PILOT, EMAIL), EMAIL, null, alice()));
        }

        @Test
        void liveStageNeedsNoPilotList() {
            assertLinked("u-alice", link(account(Stage.LIVE), EMAIL, null, alice()));
        }

        @Test
        void noOrganization() {
            Store store = new Store(alice());
            assertRefused(Reason.NO_ORGANIZATION, LinkPolicy.link(null, EMAIL, Claim.of(true), OID, store));
            assertTrue(store.asked.isEmpty(), "no user lookup without an organization");
        }

        @Test
        void ssoDisabledComesBeforeEverythingElseAboutTheUser() {
            assertRefused(Reason.SSO_DISABLED, link(account(Stage.DISABLED, EMAIL), EMAIL, null, alice()));
            assertRefused(Reason.SSO_DISABLED, link(account(Stage.DISABLED), null, Claim.of("false")));
        }

        @Test
        void anAccountAwaitingSetupHasNoSsoEvenIfAProviderShowsUp() {
            // Awaiting setup means no identity provider; one linked by hand must not open SSO.
            assertRefused(Reason.SSO_DISABLED, link(account(Stage.AWAITING_SETUP, EMAIL), EMAIL, null, alice()));
            assertRefused(Reason.SSO_DISABLED,
                    LinkPolicy.guard(account(Stage.AWAITING_SETUP, EMAIL), "u1", true, true, EMAIL));
        }

        @Test
        void emailMissing() {
            assertRefused(Reason.EMAIL_MISSING, link(account(Stage.LIVE), null, null, alice()));
            assertRefused(Reason.EMAIL_MISSING, link(account(Stage.LIVE), "  ", null, alice()));
        }

        @Test
        void edovTrueAsJsonBooleanIsAccepted() {
            assertLinked("u-alice", link(account(Stage.LIVE), EMAIL, Claim.of(Boolean.TRUE), alice()));
        }

        @Test
        void edovAbsentIsAcceptedInADomainProvenForTheTenant() {
            assertLinked("u-alice", link(account(Stage.LIVE), EMAIL, null, alice()));
            assertLinked("u-alice", link(account(Stage.LIVE), EMAIL, Claim.ABSENT, alice()));
        }

        /**
         * Issue 19: any tenant admin can set a user's mail to victim@acme.com and leave the optional
         * claim out. Without xms_edov the address is trusted only where the tenant proved the domain.
         */
        @Test
        void edovAbsentIsRefusedInADomainNotProvenForTheTenant() {
            assertRefused(Reason.DOMAIN_UNPROVEN, link(unproven(Stage.LIVE), EMAIL, null, alice()));
            Candidate sven = new Candidate("u-sven", "sven@acme.se", true, true, null);
            assertRefused(Reason.DOMAIN_UNPROVEN, link(account(Stage.LIVE), "sven@acme.se", null, sven));
            assertRefused(Reason.DOMAIN_UNPROVEN, link(unproven(Stage.PILOT, EMAIL), EMAIL, Claim.ABSENT, alice()));
        }

        @Test
        void edovTrueNeedsNoProofAndEdovFalseIsRefusedEvenInAProvenDomain() {
            assertLinked("u-alice", link(unproven(Stage.LIVE), EMAIL, Claim.of(Boolean.TRUE), alice()));
            assertRefused(Reason.EMAIL_UNVERIFIED, link(account(Stage.LIVE), EMAIL, Claim.of(Boolean.FALSE), alice()));
        }

        @Test
        void aProofCountsOnlyForAVerifiedOrganizationDomain() {
            Account proofOfARemovedDomain = Account.of(Stage.LIVE, List.of(), ACME_DOMAINS,
                    Set.of("acme.com", "acme-unverified.com", "evil.com"));
            Candidate bob = new Candidate("u-bob", "bob@acme-unverified.com", true, true, null);
            assertRefused(Reason.DOMAIN_NOT_ALLOWED,
                    link(proofOfARemovedDomain, "bob@acme-unverified.com", null, bob));
            assertRefused(Reason.DOMAIN_NOT_ALLOWED, link(proofOfARemovedDomain, "eve@evil.com", null));
        }

        @Test
        void theProofCheckComesBeforeTheUserLookup() {
            Store store = new Store(alice());
            assertRefused(Reason.DOMAIN_UNPROVEN, LinkPolicy.link(unproven(Stage.LIVE), EMAIL, Claim.ABSENT, OID, store));
            assertTrue(store.asked.isEmpty());
        }

        /** The rule is "carries xms_edov and it is not true": only the JSON boolean true passes. */
        @ParameterizedTest
        @ValueSource(strings = {"true", "TRUE", "1", " true ", "false", "0", "", "yes"})
        void edovAsAStringIsRefusedWhateverItSays(String value) {
            assertRefused(Reason.EMAIL_UNVERIFIED, link(account(Stage.LIVE), EMAIL, Claim.of(value), alice()));
        }

        @Test
        void edovSentAsNullIsNotAbsent() {
            assertRefused(Reason.EMAIL_UNVERIFIED, link(account(Stage.LIVE), EMAIL, Claim.of(null), alice()));
        }

        @Test
        void edovFalseOrOtherTypes() {
            assertRefused(Reason.EMAIL_UNVERIFIED, link(account(Stage.LIVE), EMAIL, Claim.of(Boolean.FALSE), alice()));
            assertRefused(Reason.EMAIL_UNVERIFIED, link(account(Stage.LIVE), EMAIL, Claim.of(1), alice()));
            assertRefused(Reason.EMAIL_UNVERIFIED, link(account(Stage.LIVE), EMAIL, Claim.of(List.of(true)), alice()));
            assertRefused(Reason.EMAIL_UNVERIFIED, link(account(Stage.LIVE), EMAIL, Claim.of(Map.of("value", true)), alice()));
        }

        @Test
        void domainMustBeAVerifiedOrganizationDomain() {
            Candidate bob = new Candidate("u-bob", "bob@acme-unverified.com", true, true, null);
            assertRefused(Reason.DOMAIN_NOT_ALLOWED,
                    link(account(Stage.LIVE), "bob@acme-unverified.com", null, bob));
            Candidate eve = new Candidate("u-eve", "eve@evil.com", true, true, null);
            assertRefused(Reason.DOMAIN_NOT_ALLOWED, link(account(Stage.LIVE), "eve@evil.com", null, eve));
        }

        /** Java's own case folding turns U+212A KELVIN SIGN into 'k': only ASCII letters fold here. */
        @Test
        void aCompatibilityCharacterNeverFoldsIntoAnAccountDomainOrAnotherUsersAddress() {
            Account kelvin = Account.of(Stage.LIVE, List.of(), List.of(new Account.Domain("kelvin.example", true)),
                    Set.of("kelvin.example"));
            Candidate victim = new Candidate("u-victim", "victim@kelvin.example", true, true, null);
            assertRefused(Reason.DOMAIN_NOT_ALLOWED, link(kelvin, "victim@\u212Aelvin.example", null, victim));
            assertRefused(Reason.NO_USER, link(kelvin, "\u212Aim@kelvin.example", null,
                    new Candidate("u-kim", "kim@kelvin.example", true, true, null)));
        }

        @Test
        void domainIsTakenAfterTheLastAtAndComparedIgnoringCase() {
            Candidate odd = new Candidate("u-odd", "odd@evil.com@ACME.com", true, true, null);
            assertLinked("u-odd", link(account(Stage.LIVE), "odd@evil.com@ACME.com", null, odd));
            assertRefused(Reason.DOMAIN_NOT_ALLOWED,
                    link(account(Stage.LIVE), "alice@acme.com@evil.com", null, alice()));
        }

        @Test
        void subdomainsAndSuffixesDoNotCount() {
            assertRefused(Reason.DOMAIN_NOT_ALLOWED, link(account(Stage.LIVE), "a@mail.acme.com", null));
            assertRefused(Reason.DOMAIN_NOT_ALLOWED, link(account(Stage.LIVE), "a@notacme.com", null));
            assertRefused(Reason.DOMAIN_NOT_ALLOWED, link(account(Stage.LIVE), "no-at-sign", null));
            assertRefused(Reason.DOMAIN_NOT_ALLOWED, link(account(Stage.LIVE), "trailing@", null));
        }

        @Test
        void provenDomainsAreComparedIgnoringCase() {
            Account upper = Account.of(Stage.LIVE, List.of(), ACME_DOMAINS, Set.of(" ACME.com "));
            assertLinked("u-alice", link(upper, "Alice@Acme.COM", null,
                    new Candidate("u-alice", EMAIL, true, true, null)));
        }

        @Test
        void noDomainsAtAll() {
            Account bare = Account.of(Stage.LIVE, List.of(), List.of());
            assertRefused(Reason.DOMAIN_NOT_ALLOWED, link(bare, EMAIL, null, alice()));
        }

        @Test
        void domainCheckComesBeforeTheUserLookup() {
            Store store = new Store(alice());
            LinkPolicy.link(account(Stage.LIVE), "eve@evil.com", Claim.ABSENT, OID, store);
            assertTrue(store.asked.isEmpty());
        }

        @Test
        void noUser() {
            assertRefused(Reason.NO_USER, link(account(Stage.LIVE), EMAIL, null));
        }

        @Test
        void storeAnswersAreRecheckedByEmailSoUsernameMatchesNeverCount() {
            // A store (or a federation provider) that also matched the username must not link.
            Candidate byUsername = new Candidate("u-other", "other@acme.com", true, true, null);
            assertRefused(Reason.NO_USER, link(account(Stage.LIVE), EMAIL, null, byUsername));
            Candidate noEmail = new Candidate("u-none", null, true, true, null);
            assertRefused(Reason.NO_USER, link(account(Stage.LIVE), EMAIL, null, noEmail));
        }

        @Test
        void emailIsComparedIgnoringCase() {
            Candidate stored = new Candidate("u-alice", "alice@acme.com", true, true, null);
            assertLinked("u-alice", link(account(Stage.PILOT, EMAIL), "Alice@ACME.com", null, stored));
            Candidate upper = new Candidate("u-alice", "ALICE@acme.COM", true, true, null);
            assertLinked("u-alice", link(account(Stage.PILOT, EMAIL), EMAIL, null, upper));
        }

        @Test
        void storeIsAskedForTheEmailOnly() {
            Store store = new Store(alice());
            LinkPolicy.link(account(Stage.LIVE), EMAIL, Claim.ABSENT, OID, store);
            assertEquals(List.of(EMAIL), store.asked);
        }

        @Test
        void ambiguousEmail() {
            Candidate twin = new Candidate("u-alice2", "Alice@acme.com", true, true, null);
            assertRefused(Reason.AMBIGUOUS_EMAIL, link(account(Stage.LIVE), EMAIL, null, alice(), twin));
        }

        @Test
        void ambiguityCountsEvenDisabledOrForeignUsers() {
            Candidate foreign = new Candidate("u-foreign", EMAIL, false, false, null);
            assertRefused(Reason.AMBIGUOUS_EMAIL, link(account(Stage.LIVE), EMAIL, null, alice(), foreign));
        }

        @Test
        void theSameUserReportedTwiceIsOneUser() {
            assertLinked("u-alice", link(account(Stage.LIVE), EMAIL, null, alice(), alice()));
        }

        @Test
        void userDisabled() {
            Candidate disabled = new Candidate("u-alice", EMAIL, false, true, null);
            assertRefused(Reason.USER_DISABLED, link(account(Stage.PILOT, EMAIL), EMAIL, null, disabled));
        }

        @Test
        void notMember() {
            Candidate outsider = new Candidate("u-alice", EMAIL, true, false, null);
            assertRefused(Reason.NOT_MEMBER, link(account(Stage.PILOT, EMAIL), EMAIL, null, outsider));
            assertRefused(Reason.NOT_MEMBER, link(account(Stage.LIVE), EMAIL, null, outsider));
        }

        @Test
        void notPilot() {
            assertRefused(Reason.NOT_PILOT, link(account(Stage.PILOT), EMAIL, null, alice()));
            assertRefused(Reason.NOT_PILOT, link(account(Stage.PILOT, "bob@acme.com"), EMAIL, null, alice()));
        }

        @Test
        void pilotListIsComparedLowerCased() {
            assertLinked("u-alice", link(account(Stage.PILOT, " ALICE@Acme.com "), "Alice@Acme.COM", null, alice()));
        }

        @Test
        void linkedToTheSameIdentityIsFine() {
            Candidate linked = new Candidate("u-alice", EMAIL, true, true, OID);
            assertLinked("u-alice", link(account(Stage.LIVE), EMAIL, null, linked));
        }

        @Test
        void linkedToAnotherIdentity() {
            Candidate linked = new Candidate("u-alice", EMAIL, true, true, "some-other-object-id");
            assertRefused(Reason.LINKED_TO_OTHER_IDENTITY, link(account(Stage.LIVE), EMAIL, null, linked));
        }

        @Test
        void firstFailingCheckWins() {
            Candidate worst = new Candidate("u-alice", EMAIL, false, false, "other");
            assertRefused(Reason.USER_DISABLED, link(account(Stage.PILOT), EMAIL, null, worst));
            Candidate foreignNotPilot = new Candidate("u-alice", EMAIL, true, false, "other");
            assertRefused(Reason.NOT_MEMBER, link(account(Stage.PILOT), EMAIL, null, foreignNotPilot));
            Candidate linkedNotPilot = new Candidate("u-alice", EMAIL, true, true, "other");
            assertRefused(Reason.NOT_PILOT, link(account(Stage.PILOT), EMAIL, null, linkedNotPilot));
        }
    }

    @Nested
    class Guard {

        @Test
        void letsAnEnabledMemberInWhenLive() {
            assertLinked("u1", LinkPolicy.guard(account(Stage.LIVE), "u1", true, true, "x@elsewhere.org"));
        }

        @Test
        void letsAPilotUserInDuringPilot() {
            assertLinked("u1", LinkPolicy.guard(account(Stage.PILOT, EMAIL), "u1", true, true, "Alice@Acme.com"));
        }

        @Test
        void noOrganization() {
            assertRefused(Reason.NO_ORGANIZATION, LinkPolicy.guard(null, "u1", true, true, EMAIL));
        }

        @Test
        void ssoDisabled() {
            assertRefused(Reason.SSO_DISABLED, LinkPolicy.guard(account(Stage.DISABLED, EMAIL), "u1", true, true, EMAIL));
        }

        @Test
        void userDisabled() {
            assertRefused(Reason.USER_DISABLED, LinkPolicy.guard(account(Stage.LIVE), "u1", false, true, EMAIL));
        }

        @Test
        void notMember() {
            assertRefused(Reason.NOT_MEMBER, LinkPolicy.guard(account(Stage.LIVE), "u1", true, false, EMAIL));
        }

        @Test
        void notPilot() {
            assertRefused(Reason.NOT_PILOT, LinkPolicy.guard(account(Stage.PILOT, "bob@acme.com"), "u1", true, true, EMAIL));
            assertRefused(Reason.NOT_PILOT, LinkPolicy.guard(account(Stage.PILOT, EMAIL), "u1", true, true, null));
        }

        @Test
        void domainsDoNotMatterAfterLinking() {
            // The user's email may have moved to another domain; the link is by object id.
            assertLinked("u1", LinkPolicy.guard(Account.of(Stage.LIVE, List.of(), List.of()), "u1", true, true, null));
        }
    }

    @Nested
    class Proofs {

        static final String PROOF = "acme.com " + TENANT + " 2030-05-01T12:00:00Z discovery";

        @Test
        void aProofNamesTheDomainForTheAccountsCurrentTenant() {
            assertEquals(Set.of("acme.com"), Account.provenDomains(List.of(PROOF), TENANT));
            assertEquals(Set.of("acme.com"), Account.provenDomains(List.of(" ACME.com " + TENANT.toUpperCase()
                    + " 2030-05-01T12:00:00Z discovery"), TENANT));
        }

        @Test
        void aProofOfAnotherTenantProvesNothing() {
            // The account moved to another tenant: its old proofs must not carry over.
            assertEquals(Set.of(), Account.provenDomains(List.of(PROOF), OTHER_TENANT));
            assertEquals(Set.of(), Account.provenDomains(List.of(PROOF), null));
            assertEquals(Set.of(), Account.provenDomains(List.of(PROOF), " "));
        }

        @ParameterizedTest
        @ValueSource(strings = {"", "acme.com", "acme.com " + TENANT,
                "acme.com " + TENANT + " 2030-05-01T12:00:00Z guessed",
                "acme.com " + TENANT + " 2030-05-01T12:00:00Z discovery extra"})
        void aMalformedValueProvesNothing(String value) {
            assertEquals(Set.of(), Account.provenDomains(Arrays.asList(value, null), TENANT));
        }
    }

    @Nested
    class Stages {

        @Test
        void missingOrBlankMeansPilot() {
            assertEquals(Stage.PILOT, Stage.of(null));
            assertEquals(Stage.PILOT, Stage.of(List.of()));
            assertEquals(Stage.PILOT, Stage.of(Arrays.asList(null, " ")));
        }

        @Test
        void knownValues() {
            assertEquals(Stage.PILOT, Stage.of(List.of("pilot")));
            assertEquals(Stage.LIVE, Stage.of(List.of("live")));
            assertEquals(Stage.LIVE, Stage.of(List.of(" Live ")));
            assertEquals(Stage.DISABLED, Stage.of(List.of("disabled")));
            assertEquals(Stage.AWAITING_SETUP, Stage.of(List.of("awaiting-setup")));
        }

        @Test
        void unknownValueFallsBackToThePilot() {
            assertEquals(Stage.PILOT, Stage.of(List.of("lvie")));
        }
    }

    @Nested
    class Reasons {

        @Test
        void codesAreTheContractOnes() {
            List<String> contract = List.of("no_organization", "sso_disabled", "email_missing", "email_unverified",
                    "domain_not_allowed", "domain_unproven", "no_user", "ambiguous_email", "user_disabled",
                    "not_member", "not_pilot", "linked_to_other_identity");
            assertEquals(contract, Arrays.stream(Reason.values()).map(Reason::code).toList());
            assertEquals("apsis_sso_refused", Reason.EVENT_ERROR);
        }

        @Test
        void decisionHoldsExactlyOneOfUserAndReason() {
            Map<String, Runnable> invalid = Map.of(
                    "both", () -> new LinkDecision("u", Reason.NO_USER),
                    "neither", () -> new LinkDecision(null, null));
            invalid.forEach((name, make) -> {
                try {
                    make.run();
                    throw new AssertionError(name + " accepted");
                } catch (IllegalArgumentException expected) {
                    // expected
                }
            });
        }
    }
}
